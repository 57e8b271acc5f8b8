"""The CLI's frame (swapdrop_cli.app, errors, output, api): parsing with global options anywhere,
errors → exit codes, --json error lines, help that teaches, and the jobs API client's signing,
batching, paging and error mapping (a fake HTTP session: no sockets)."""

from __future__ import annotations

import argparse
import io
import json
import sys
import types
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from swapdrop_cli import app, commands
from swapdrop_cli.api import ApiError, JobsApi
from swapdrop_cli.commands.jobs import parse_since
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.output import Output
from swapdrop_cli.target import Target

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--stack", "prod", "--region", "eu-west-1", "jobs"],
        ["jobs", "--json", "--stack", "prod", "--region", "eu-west-1"],
        ["--stack", "prod", "jobs", "--region", "eu-west-1", "--json"],
    ],
)
def test_global_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = app.build_parser().parse_args(argv)
    assert (args.command, args.stack, args.region, args.json) == ("jobs", "prod", "eu-west-1", True)


def test_global_options_left_out_are_absent_not_defaulted_by_a_subparser() -> None:
    args = app.build_parser().parse_args(["--stack", "prod", "face", "list"])
    assert args.stack == "prod" and not hasattr(args, "local")


@pytest.mark.parametrize(
    ("argv", "pinned"),
    [
        (["--local", "jobs"], ["--local=out/local.json", "jobs"]),
        (["status", "--local", "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617"], ["status", "--local=out/local.json", "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617"]),  # noqa: E501
        (["jobs", "--local"], ["jobs", "--local=out/local.json"]),
        (["--local", "--json", "jobs"], ["--local=out/local.json", "--json", "jobs"]),
        (["--local", "other.json", "jobs"], ["--local", "other.json", "jobs"]),
        (["--local", "/tmp/info", "jobs"], ["--local", "/tmp/info", "jobs"]),
        (["cancel", "--", "--local"], ["cancel", "--", "--local"]),
    ],
)  # fmt: skip
def test_local_takes_a_following_word_only_when_it_looks_like_a_file(argv: list[str], pinned: list[str]) -> None:
    assert app.pin_local_info(argv, {"jobs", "status", "cancel"}) == pinned


def test_local_info_file_parsed() -> None:
    args = app.build_parser().parse_args(app.pin_local_info(["--local", "jobs"], {"jobs"}))
    assert args.local == "out/local.json"
    args = app.build_parser().parse_args(["jobs", "--local", "x/y.json"])
    assert args.local == "x/y.json"


NOW = datetime(2024, 10, 16, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2024, 10, 16, 11, 30, tzinfo=UTC)),
        ("2h", datetime(2024, 10, 16, 10, 0, tzinfo=UTC)),
        ("1d", datetime(2024, 10, 15, 12, 0, tzinfo=UTC)),
        ("1w", datetime(2024, 10, 9, 12, 0, tzinfo=UTC)),
        ("90s", datetime(2024, 10, 16, 11, 58, 30, tzinfo=UTC)),
        ("2024-10-01T08:00:00Z", datetime(2024, 10, 1, 8, 0, tzinfo=UTC)),
        ("2024-10-01T08:00:00", datetime(2024, 10, 1, 8, 0, tzinfo=UTC)),
        ("2024-10-01T10:00:00+02:00", datetime(2024, 10, 1, 8, 0, tzinfo=UTC)),
        ("2024-10-01", datetime(2024, 10, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_and_iso_times(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2x", "-1h", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="expected 30m, 2h, 1d, 1w or an ISO-8601 time"):
        parse_since(text, now=NOW)


# --- errors and exit codes ------------------------------------------------------------------------


def _with_command(monkeypatch: pytest.MonkeyPatch, run: Any) -> None:
    """Replace the command registry by one command, `boom`, whose run is `run`."""

    def register(subparsers: Any) -> None:
        parser = subparsers.add_parser("boom", help="a test command", epilog="Examples:\n  swapdrop boom")
        parser.set_defaults(func=run)

    monkeypatch.setattr(commands, "modules", lambda: [types.SimpleNamespace(register=register)])


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (CliError("bad face", ExitCode.USAGE), 2),
        (CliError("gone", ExitCode.UNREACHABLE), 3),
        (ApiError(403, "", "refused"), 4),
        (ApiError(401, "unauthenticated", "who are you"), 4),
        (ApiError(404, "not_found", "no job"), 2),
        (ApiError(409, "job_finished", "finished"), 2),
        (ApiError(500, "internal", "oops"), 3),
        (ApiError(502, "", "bad gateway"), 3),
        (ApiError(429, "", "Too Many Requests"), 3),
        (NoCredentialsError(), 4),
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetQueueAttributes"), 4),
        (ClientError({"Error": {"Code": "QueueDoesNotExist", "Message": "no"}}, "GetQueueAttributes"), 3),
        (KeyboardInterrupt(), 130),
    ],
)
def test_errors_become_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, raised: BaseException, code: int
) -> None:
    def run(args: argparse.Namespace, ctx: Any) -> int:
        raise raised

    _with_command(monkeypatch, run)
    assert app.main(["boom"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    if code != 130:
        assert captured.err.startswith("error: ")


def test_a_command_returns_its_own_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_command(monkeypatch, lambda args, ctx: ExitCode.JOBS_FAILED)
    assert app.main(["boom"]) == 1


def test_json_errors_are_also_a_json_line_on_stdout(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def run(args: argparse.Namespace, ctx: Any) -> int:
        raise CliError("no job 42 in stack 'prod'", ExitCode.USAGE, hint="swapdrop jobs lists the jobs")

    _with_command(monkeypatch, run)
    assert app.main(["boom", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "error": {"message": "no job 42 in stack 'prod'", "exitCode": 2, "hint": "swapdrop jobs lists the jobs"}
    }
    assert captured.err == "error: no job 42 in stack 'prod'\n  hint: swapdrop jobs lists the jobs\n"


def test_usage_errors_exit_2_with_usage_and_a_hint(capsys: Any) -> None:
    assert app.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: swapdrop")
    assert "error: argument COMMAND: invalid choice: 'no-such-command'" in err
    assert app.main(["jobs", "--limit", "many", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["exitCode"] == 2


def test_no_command_prints_the_help_and_exits_2(capsys: Any) -> None:
    assert app.main([]) == 2
    assert capsys.readouterr().out.startswith("usage: swapdrop")


def test_stack_and_local_together_exit_2(capsys: Any) -> None:
    assert app.main(["--stack", "prod", "jobs", "--local"]) == 2
    assert "error: use --stack or --local, not both" in capsys.readouterr().err


def test_the_target_is_resolved_only_when_a_command_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "resolve_target", lambda args: pytest.fail("resolved"))
    _with_command(monkeypatch, lambda args, ctx: 0)
    assert app.main(["boom", "--stack", "x"]) == 0


# --- help -----------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "swapdrop") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix} {name}"] = sub
                found.update(_subcommands(sub, f"{prefix} {name}"))
    return found


def test_help_lists_every_command_with_one_line_and_the_exit_codes(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        app.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    top = [name.split()[1] for name in _subcommands(app.build_parser()) if len(name.split()) == 2]
    assert {"face", "status", "jobs", "cancel", "retry", "result", "local", "demo"} <= set(top)
    for name in top:
        assert any(line.split()[:1] == [name] and len(line.split()) > 1 for line in out.splitlines()), name
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
        assert any(line.strip().startswith(code) for line in out.splitlines()), code


def test_every_command_has_a_description_and_examples() -> None:
    for name, parser in _subcommands(app.build_parser()).items():
        assert parser.description, name
        assert "examples:\n  swapdrop " in (parser.epilog or "").lower(), name


# --- local and demo ---------------------------------------------------------------------------------


def test_local_without_its_packages_says_how_to_install_them(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setitem(sys.modules, "swapdrop_local", None)  # import swapdrop_local → ModuleNotFoundError
    assert app.main(["local", "--info-file", "x.json"]) == 2
    err = capsys.readouterr().err
    assert "swapdrop local needs the local stack's packages: pip install 'swapdrop[local]' (or make venv)" in err


def test_local_and_demo_arguments_go_to_swapdrop_local_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("swapdrop_local.cli")
    fake.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    package = types.ModuleType("swapdrop_local")
    package.cli = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "swapdrop_local", package)
    monkeypatch.setitem(sys.modules, "swapdrop_local.cli", fake)
    assert app.main(["local", "--info-file", "out/x.json", "--region", "eu-west-1"]) == 0
    assert app.main(["demo", "--out", "d"]) == 0
    assert seen == [["local", "--info-file", "out/x.json", "--region", "eu-west-1"], ["demo", "--out", "d"]]
    # --json (and -q) before the command are handed on; --json only once
    assert app.main(["--json", "local", "--info-file", "out/x.json"]) == 0
    assert app.main(["--json", "-q", "demo", "--json"]) == 0
    assert seen[2:] == [["local", "--info-file", "out/x.json", "--json"], ["demo", "--json"]]


def test_target_options_before_local_are_a_usage_error_that_says_where_its_options_go(capsys: Any) -> None:
    assert app.main(["--stack", "prod", "local", "--info-file", "x.json"]) == 2
    err = capsys.readouterr().err
    assert "take their options after the command" in err


# --- output -------------------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_output_modes() -> None:
    out, err = _Tty(), _Tty()
    human = Output(stdout=out, stderr=err)
    human.emit({"a": 1})
    human.line("shown")
    human.note("a note")
    human.table(("JOB", "STATUS"), [("3f2a9c1e5b7d4e8fa0b1c2d3e4f50617", "SUCCESS")])
    assert out.getvalue().splitlines()[0] == "shown"
    assert out.getvalue().splitlines()[1].split() == ["JOB", "STATUS"]
    assert out.getvalue().splitlines()[2].split() == ["3f2a9c1e5b7d4e8fa0b1c2d3e4f50617", "SUCCESS"]
    assert err.getvalue() == "a note\n"

    out, err = _Tty(), _Tty()
    machine = Output(json_mode=True, stdout=out, stderr=err)
    machine.emit({"jobId": "x", "status": "SUCCESS"})
    machine.line("not in json mode")
    machine.table(("A",), [("b",)])
    machine.result("/path")
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"jobId": "x", "status": "SUCCESS"}]

    out, err = _Tty(), _Tty()
    quiet = Output(quiet=True, stdout=out, stderr=err)
    quiet.line("chatter")
    quiet.note("note")
    quiet.result("/kept/for/scripts.jpg")
    assert (out.getvalue(), err.getvalue()) == ("/kept/for/scripts.jpg\n", "")


def test_table_cells_are_not_rich_markup() -> None:
    out = _Tty()
    Output(stdout=out).table(("FACE",), [("[bold]alice[/bold]",)])
    assert "[bold]alice[/bold]" in out.getvalue()


# --- the jobs API client ----------------------------------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, body: Any = None, text: str | None = None) -> None:
        self.status_code = status
        self._body = body
        self.content = b"" if body is None and text is None else (text or json.dumps(body)).encode()
        self.text = text or (json.dumps(body) if body is not None else "")

    def json(self) -> Any:
        return json.loads(self.content)


class FakeHttp:
    def __init__(self, *answers: FakeResponse) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, data: Any = None, headers: Any = None, timeout: Any = None) -> Any:
        self.requests.append({"method": method, "url": url, "data": data, "headers": headers})
        return self.answers.pop(0)


def _target(kind: str = "stack") -> Target:
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    return Target(kind, "prod", "eu-west-1", {"ApiUrl": "https://api.example.com/"}, session)


def test_every_request_is_sigv4_signed_for_execute_api() -> None:
    http = FakeHttp(FakeResponse(200, {"jobId": "j", "status": "PENDING"}))
    JobsApi(_target(), http=http).get_job("j", wait=20)  # type: ignore[arg-type]
    sent = http.requests[0]
    assert sent["url"] == "https://api.example.com/jobs/j?wait=20"
    authorization = sent["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "X-Amz-Date" in sent["headers"]


def test_path_values_are_one_segment() -> None:
    http = FakeHttp(FakeResponse(200, {"face": "a b", "key": "faces/a b.jpg", "upload": {}}))
    JobsApi(_target(), http=http).put_face("a b/c", "image/jpeg")  # type: ignore[arg-type]
    assert http.requests[0]["url"] == "https://api.example.com/faces/a%20b%2Fc"
    assert json.loads(http.requests[0]["data"]) == {"contentType": "image/jpeg"}


def test_batches_of_more_than_100_are_split_with_their_own_idempotency_keys() -> None:
    def batch(count: int) -> FakeResponse:
        return FakeResponse(202, {"jobs": [{"index": i, "job": {"jobId": f"j{i}"}} for i in range(count)]})

    http = FakeHttp(batch(100), batch(100), batch(50))
    targets = [{"s3Key": f"inbox/a/{i}.jpg"} for i in range(250)]
    entries = JobsApi(_target(), http=http).create_jobs("alice", targets, idempotency_key="k")  # type: ignore[arg-type]
    assert [entry["index"] for entry in entries] == list(range(250))
    assert [len(json.loads(r["data"])["targets"]) for r in http.requests] == [100, 100, 50]
    assert [r["headers"]["Idempotency-Key"] for r in http.requests] == ["k", "k-2", "k-3"]
    assert json.loads(http.requests[2]["data"])["targets"][0] == {"s3Key": "inbox/a/200.jpg"}


def test_listing_follows_cursors_up_to_the_limit() -> None:
    def page(first: int, count: int, cursor: str | None) -> FakeResponse:
        return FakeResponse(200, {"jobs": [{"jobId": f"j{i}"} for i in range(first, first + count)], "cursor": cursor})

    http = FakeHttp(page(0, 100, "c1"), page(100, 30, "c2"))
    jobs = list(JobsApi(_target(), http=http).list_jobs(status="FAILURE", limit=130))  # type: ignore[arg-type]
    assert [job["jobId"] for job in jobs] == [f"j{i}" for i in range(130)]
    assert "status=FAILURE&limit=100" in http.requests[0]["url"]
    assert "limit=30&cursor=c1" in http.requests[1]["url"]


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (FakeResponse(403, {"message": "Forbidden"}), 4, "the jobs API refused the request (403 Forbidden)"),
        (FakeResponse(401, {"message": "Unauthorized"}), 4, "the jobs API refused the request (401 Unauthorized)"),
        (FakeResponse(404, {"error": {"code": "not_found", "message": "no job j"}}), 2, "no job j in stack 'prod'"),
        (FakeResponse(500, {"error": {"code": "internal", "message": "logged"}}), 3, "the jobs API failed"),
        (FakeResponse(503, text="<html>down</html>"), 3, "the jobs API failed (GET /jobs/j: 503 HTTP 503)"),
    ],
)
def test_api_errors_map_to_exit_codes(answer: FakeResponse, code: int, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        JobsApi(_target(), http=FakeHttp(answer)).get_job("j")  # type: ignore[arg-type]
    assert raised.value.exit_code == code
    assert raised.value.message.startswith(message)


def test_a_refusal_hint_fits_the_target_kind() -> None:
    for kind, hint in (("stack", "ClientPolicyArn"), ("local", "use its current info file")):
        with pytest.raises(ApiError) as raised:
            JobsApi(_target(kind), http=FakeHttp(FakeResponse(403, {"message": "Forbidden"}))).health()  # type: ignore[arg-type]
        assert hint in (raised.value.hint or "")


def test_an_operator_only_refusal_keeps_the_apis_words() -> None:
    body = {"error": {"code": "forbidden", "message": "only IAM callers (operators) may add faces"}}
    with pytest.raises(ApiError) as raised:
        JobsApi(_target(), http=FakeHttp(FakeResponse(403, body))).put_face("a", "image/png")  # type: ignore[arg-type]
    assert (raised.value.exit_code, raised.value.message) == (4, "only IAM callers (operators) may add faces")


def test_reads_are_retried_on_throttling_and_gateway_errors_writes_never() -> None:
    api = JobsApi(_target())
    retry = api.http.get_adapter("https://api.example.com/jobs").max_retries
    assert set(retry.status_forcelist) == {429, 502, 503, 504}
    assert retry.is_retry("GET", 429) and retry.is_retry("GET", 503)
    for method in ("POST", "PUT", "DELETE"):
        assert not retry.is_retry(method, 503), method
    assert not retry.is_retry("GET", 500)  # the function failed: retrying does not help, its logs do
