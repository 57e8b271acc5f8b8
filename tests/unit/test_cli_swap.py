"""`swapdrop swap` and `swapdrop wait` on a fake jobs API (no sockets): batches and their keys,
refused targets, uploads, the waiting loop (bounded polls, settling, retries, auth, timeouts), where
results are saved (never outside --out), the resume command and the drop-folder fallback."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from swapdrop_cli.commands import swap, wait
from swapdrop_cli.commands.wait import MANIFEST, Saver, Waiter, Watched, resume_command
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.output import Output
from swapdrop_cli.progress import JobRow, Progress

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


class FakeApiError(CliError):
    def __init__(self, status: int, message: str, exit_code: int) -> None:
        super().__init__(message, exit_code)
        self.status = status


def _job(job_id: str, status: str = "AWAITING_UPLOAD", **extra: Any) -> dict:
    view = {
        "jobId": job_id,
        "status": status,
        "progress": 0,
        "createdAt": "2024-10-16T09:59:00Z",
        "face": "alice",
        "target": {"key": f"uploads/{job_id}/target.jpg"},
        **extra,
    }
    if status == "SUCCESS" and "result" not in extra:
        view["result"] = {
            "key": f"results/alice/jobs/{job_id}.png",
            "url": f"https://s3/{job_id}",
            "contentType": "image/png",
        }
    return view


class FakeApi:
    """Scripted job views per id (the last one repeats), and a record of every call."""

    def __init__(self, scripts: dict[str, list[Any]] | None = None) -> None:
        self.scripts = {k: list(v) for k, v in (scripts or {}).items()}
        self.calls: list[tuple] = []
        self.created = 0
        self.refuse: set[int] = set()
        self.fail_uploads: set[str] = set()
        self.default_status = "SUCCESS"
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def create_jobs(self, face: str, targets: list[dict], idempotency_key: str | None = None, metadata: Any = None):
        self.calls.append(("create", face, len(targets), idempotency_key, metadata))
        entries = []
        for index, target in enumerate(targets):
            if self.created + index in self.refuse:
                entries.append({"index": index, "error": {"code": "invalid_request", "message": "bad target"}})
                continue
            job_id = f"{self.created + index:032x}"
            view = _job(job_id)
            if "upload" in target:
                view["upload"] = {"url": "https://s3/", "fields": {"key": f"uploads/{job_id}/target.jpg"}}
            entries.append({"index": index, "job": view})
        self.created += len(targets)
        return entries

    def list_faces(self):
        self.calls.append(("faces",))
        return iter([{"face": "alice"}, {"face": "Cafe\u0301"}])

    def get_job(self, job_id: str, wait: int = 0) -> dict:
        with self.lock:
            self.calls.append(("get", job_id, wait))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            script = self.scripts.get(job_id) or [_job(job_id, self.default_status)]
            step = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(step, Exception):
                raise step
            return step
        finally:
            with self.lock:
                self.in_flight -= 1

    def upload(self, form: dict, path: Path, content_type: str | None = None) -> None:
        self.calls.append(("upload", form["fields"]["key"], path.name))
        if path.name in self.fail_uploads:
            raise CliError(f"the bucket refused {path}: EntityTooLarge: too big", ExitCode.USAGE)

    def cancel(self, job_id: str) -> dict:
        self.calls.append(("cancel", job_id))
        return _job(job_id, "CANCELLED")

    def download(self, url: str, dest: Path) -> int:
        self.calls.append(("download", url, dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(PNG)
        return len(PNG)


class FakeTarget:
    kind = "local"
    description = "local stack 'test'"
    bucket = "swap-bucket"
    region = "us-east-1"

    def __init__(self, api_url: str | None = "http://127.0.0.1:1/") -> None:
        self.api_url = api_url
        self.s3 = FakeS3()

    def client(self, service: str) -> Any:
        assert service == "s3"
        return self.s3


class FakeS3:
    def __init__(self) -> None:
        self.puts: list[tuple[str, bytes, str]] = []
        self.copies: list[tuple[str, str]] = []

    def put_object(self, Bucket: str, Key: str, Body: Any, ContentType: str) -> None:
        self.puts.append((Key, Body.read(), ContentType))

    def copy_object(self, Bucket: str, Key: str, CopySource: dict) -> None:
        self.copies.append((CopySource["Key"], Key))

    def list_objects_v2(self, Bucket: str, Prefix: str, MaxKeys: int) -> dict:
        return {}  # no face to be found: side-by-side images cannot be made


class Ctx:
    def __init__(self, api: FakeApi, target: FakeTarget | None = None, json_mode: bool = False, **args: Any):
        self.api = api
        self.target = target or FakeTarget()
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.output = Output(json_mode=json_mode, stdout=self.stdout, stderr=self.stderr)
        self.args = argparse.Namespace(local="out/local.json", stack=None, region=None, profile=None, **args)


def _swap_args(face: str, *targets: str, **options: Any) -> dict:
    defaults = {"wait": False, "out": None, "side_by_side": False, "timeout": None, "idempotency_key": None}
    return {"face": face, "targets": list(targets), "metadata": [], **defaults, **options}


def _run_swap(api: FakeApi, face: str, *targets: str, json_mode: bool = False, target=None, **options: Any):
    ctx = Ctx(api, target, json_mode=json_mode, **_swap_args(face, *targets, **options))
    code = swap.run(ctx.args, ctx)
    return code, ctx


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pacing between polls, tiny back-off: the loop's logic, not its timing."""
    monkeypatch.setattr(wait, "PACE_SECONDS", 0.0)
    monkeypatch.setattr(wait, "MAX_REQUESTS_PER_SECOND", 1e9)
    monkeypatch.setattr(wait, "RETRY_DELAYS", (0.0,))


def _folder(root: Path, count: int) -> Path:
    for n in range(count):
        (root / f"sub{n % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"sub{n % 3}" / f"img{n:03d}.jpg").write_bytes(JPEG)
    return root


# --- swap: creating jobs ------------------------------------------------------------------------


def test_a_bad_face_name_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    api = FakeApi()
    (tmp_path / "a.jpg").write_bytes(JPEG)
    with pytest.raises(CliError) as raised:
        _run_swap(api, "al/ice", str(tmp_path / "a.jpg"))
    assert raised.value.exit_code == ExitCode.USAGE and "'/'" in raised.value.message
    assert api.calls == []


def test_a_missing_face_is_a_usage_error_before_any_job_or_upload(tmp_path: Path) -> None:
    api = FakeApi()
    with pytest.raises(CliError, match="no face 'bob' in local stack 'test'") as raised:
        _run_swap(api, "bob", str(_folder(tmp_path / "p", 2)))
    assert raised.value.exit_code == ExitCode.USAGE
    assert "swapdrop face add bob IMAGE" in raised.value.hint
    assert api.calls == [("faces",)]
    code, _ = _run_swap(api, "Caf\u00e9", str(_folder(tmp_path / "p", 1)))  # the NFC form of a NFD name
    assert code == ExitCode.OK


def test_250_targets_go_in_three_batches_with_k_k2_k3(tmp_path: Path) -> None:
    api = FakeApi()
    api.default_status = "AWAITING_UPLOAD"  # a first run: every target still to send
    code, ctx = _run_swap(api, "alice", str(_folder(tmp_path / "p", 250)), idempotency_key="K", json_mode=True)
    assert code == ExitCode.OK
    creates = [c for c in api.calls if c[0] == "create"]
    assert [(c[2], c[3]) for c in creates] == [(100, "K"), (100, "K-2"), (50, "K-3")]
    assert len([c for c in api.calls if c[0] == "upload"]) == 250
    lines = [json.loads(line) for line in ctx.stdout.getvalue().splitlines()]
    assert len(lines) == 250
    assert set(lines[0]) == {"jobId", "target", "status"} and lines[0]["status"] == "AWAITING_UPLOAD"
    assert lines[0]["target"].endswith("img000.jpg")


def test_refused_targets_are_reported_counted_and_fail_the_run(tmp_path: Path) -> None:
    api = FakeApi()
    api.refuse = {1}
    code, ctx = _run_swap(api, "alice", str(_folder(tmp_path / "p", 3)), json_mode=True)
    assert code == ExitCode.JOBS_FAILED
    lines = [json.loads(line) for line in ctx.stdout.getvalue().splitlines()]
    assert [line["status"] for line in lines] == ["REFUSED", "AWAITING_UPLOAD", "AWAITING_UPLOAD"]
    assert lines[0]["error"]["code"] == "invalid_request"
    assert "invalid_request: bad target" in ctx.stderr.getvalue()


def test_metadata_and_s3_and_url_targets_are_sent_as_the_api_takes_them() -> None:
    api = FakeApi()
    code, ctx = _run_swap(
        api, "alice", "s3://swap-bucket/inbox/a.jpg", "https://example.com/b.png", metadata=["order=A-1", "x=a=b"]
    )
    assert code == ExitCode.OK
    assert api.calls[:2] == [("faces",), ("create", "alice", 2, None, {"order": "A-1", "x": "a=b"})]
    assert not [c for c in api.calls if c[0] == "upload"]
    assert f"follow them with: swapdrop --local out/local.json wait {0:032x} {1:032x}" in ctx.stderr.getvalue()
    with pytest.raises(CliError, match="not KEY=VALUE"):
        _run_swap(api, "alice", "s3://swap-bucket/inbox/a.jpg", metadata=["novalue"])


def test_a_rerun_with_the_same_key_uploads_only_what_is_still_awaited(tmp_path: Path) -> None:
    root = _folder(tmp_path / "p", 3)
    done = f"{1:032x}"
    api = FakeApi({done: [_job(done, "SUCCESS")], f"{0:032x}": [_job(f"{0:032x}", "AWAITING_UPLOAD")]})
    api.scripts[f"{2:032x}"] = [_job(f"{2:032x}", "PENDING")]
    code, _ = _run_swap(api, "alice", str(root), idempotency_key="trip-1")
    assert code == ExitCode.OK
    assert [c[1] for c in api.calls if c[0] == "upload"] == [f"uploads/{0:032x}/target.jpg"]
    without_key = FakeApi()
    _run_swap(without_key, "alice", str(root))
    assert len([c for c in without_key.calls if c[0] == "upload"]) == 3
    assert not [c for c in without_key.calls if c[0] == "get"], "no extra requests without a key"


@pytest.mark.parametrize("key", ["has space", "", "é", "k" * 250])
def test_keys_the_api_would_refuse_are_usage_errors(tmp_path: Path, key: str) -> None:
    api = FakeApi()
    with pytest.raises(CliError, match="--idempotency-key must be") as raised:
        _run_swap(api, "alice", str(_folder(tmp_path / "p", 1)), idempotency_key=key)
    assert raised.value.exit_code == ExitCode.USAGE
    assert api.calls == []


def test_a_failed_upload_cancels_its_job_and_fails_the_run(tmp_path: Path) -> None:
    api = FakeApi()
    api.fail_uploads = {"img001.jpg"}
    code, ctx = _run_swap(api, "alice", str(_folder(tmp_path / "p", 3)))
    assert code == ExitCode.JOBS_FAILED
    assert ("cancel", f"{1:032x}") in api.calls
    assert "EntityTooLarge" in ctx.stderr.getvalue()
    assert re.search(rf"{1:032x}\s+\S+img001\.jpg\s+CANCELLED", ctx.stdout.getvalue()), ctx.stdout.getvalue()


def test_quiet_prints_only_the_job_ids(tmp_path: Path) -> None:
    api = FakeApi()
    ctx = Ctx(api, **_swap_args("alice", str(_folder(tmp_path / "p", 2))))
    ctx.output.quiet = True
    assert swap.run(ctx.args, ctx) == ExitCode.OK
    assert ctx.stdout.getvalue() == f"{0:032x}\n{1:032x}\n"
    assert ctx.stderr.getvalue() == ""


def test_ctrl_c_while_uploading_says_how_to_wait_for_the_jobs_created(tmp_path: Path) -> None:
    api = FakeApi()

    def interrupted(form: dict, path: Path, content_type: str | None = None) -> None:
        raise KeyboardInterrupt

    api.upload = interrupted  # type: ignore[method-assign]
    code, ctx = _run_swap(api, "alice", str(_folder(tmp_path / "p", 2)), out=tmp_path / "out")
    assert code == ExitCode.INTERRUPTED
    hint = ctx.stderr.getvalue().strip().splitlines()[-1]
    assert hint == f"swapdrop --local out/local.json wait {0:032x} {1:032x} --out {tmp_path / 'out'}"
    assert wait.read_manifest(tmp_path / "out") == {f"{0:032x}": "sub0/img000.jpg", f"{1:032x}": "sub1/img001.jpg"}


def test_another_bucket_is_refused_once_the_stack_is_known() -> None:
    api = FakeApi()
    with pytest.raises(CliError, match=r"not the stack's bucket \(swap-bucket\)") as raised:
        _run_swap(api, "alice", "s3://elsewhere/a.jpg")
    assert raised.value.exit_code == ExitCode.USAGE
    assert api.calls == []


def test_side_by_side_without_pillow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    (tmp_path / "a.jpg").write_bytes(JPEG)
    api = FakeApi()
    with pytest.raises(CliError) as raised:
        _run_swap(api, "alice", str(tmp_path / "a.jpg"), out=tmp_path / "out", side_by_side=True)
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.hint == "pip install 'swapdrop[images]'"
    assert api.calls == []


# --- waiting ------------------------------------------------------------------------------------


def _watch(api: FakeApi, job_ids: list[str], **kwargs: Any) -> tuple[Waiter, list[Watched]]:
    watched = [Watched(row=JobRow(job_id=j, target=j), view=_job(j)) for j in job_ids]
    options = {"poll_wait": 3, "pace": 0.0, "max_rate": 1e9, **kwargs}
    return Waiter(api, watched, Progress(), **options), watched


def test_polls_are_quick_while_jobs_outnumber_pollers_then_held(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"{n:032x}" for n in range(6)]
    scripts = {j: [_job(j, "PENDING"), _job(j, "IN_PROGRESS", progress=50), _job(j, "SUCCESS")] for j in ids}
    scripts[ids[0]] = [_job(ids[0], "PENDING")] * 8 + [_job(ids[0], "SUCCESS")]
    api = FakeApi(scripts)
    finished: list[str] = []
    waiter, watched = _watch(api, ids, pollers=2, on_finished=lambda item: finished.append(item.job_id))
    assert Progress().start([]) is None
    waiter.progress.start([w.row for w in watched])
    assert waiter.run(timeout=30)
    assert sorted(finished) == sorted(ids)
    assert all(w.done and w.row.status == "SUCCESS" for w in watched)
    gets = [c for c in api.calls if c[0] == "get"]
    assert api.most_in_flight <= 2, "never more polls at once than pollers"
    assert gets[0][2] == 0, "quick polls while 6 jobs share 2 pollers"
    assert gets[-1] == ("get", ids[0], 3), "the last job alone gets a held poll"


def test_success_without_a_result_is_asked_again_until_the_result_is_there(monkeypatch) -> None:
    job = "a" * 32
    api = FakeApi({job: [_job(job, "SUCCESS", result=None), _job(job, "SUCCESS")]})
    monkeypatch.setattr(wait, "RESULT_SETTLE_SECONDS", 30.0)
    waiter, (item,) = _watch(api, [job], pollers=1)
    waiter._again = lambda job_id, when: Waiter._again(waiter, job_id, 0.0)  # no half-second pause
    assert waiter.run(timeout=30)
    assert item.view["result"]["key"].endswith(".png") and item.problem is None
    assert [c[2] for c in api.calls] == [3, 0], "the second ask does not hold: the job is terminal"


def test_transient_failures_are_retried_and_auth_failures_stop_the_wait(monkeypatch) -> None:
    monkeypatch.setattr(wait, "RETRY_DELAYS", (0.0,))
    job = "b" * 32
    flaky = FakeApiError(503, "the jobs API failed", ExitCode.UNREACHABLE)
    api = FakeApi({job: [flaky, flaky, _job(job, "FAILURE", failReason="no face")]})
    waiter, (item,) = _watch(api, [job], pollers=1)
    assert waiter.run(timeout=30)
    assert (item.row.status, item.row.note) == ("FAILURE", "no face")

    denied = FakeApi({job: [FakeApiError(403, "refused", ExitCode.AUTH)]})
    waiter, _ = _watch(denied, [job], pollers=1)
    with pytest.raises(CliError) as raised:
        waiter.run(timeout=30)
    assert raised.value.exit_code == ExitCode.AUTH


def test_a_job_that_vanished_is_reported_not_waited_for() -> None:
    job = "c" * 32
    api = FakeApi({job: [FakeApiError(404, f"no job {job}", ExitCode.USAGE)]})
    waiter, (item,) = _watch(api, [job], pollers=1)
    assert waiter.run(timeout=30)
    assert item.row.status == "UNKNOWN" and item.problem == f"no job {job}" and not item.ok


def test_throttled_polls_are_retried_other_refusals_end_that_job(monkeypatch) -> None:
    monkeypatch.setattr(wait, "RETRY_DELAYS", (0.0,))
    jobs = ["1" * 32, "2" * 32]
    api = FakeApi(
        {
            jobs[0]: [FakeApiError(429, "Too Many Requests", ExitCode.USAGE), _job(jobs[0], "SUCCESS")],
            jobs[1]: [FakeApiError(400, "bad request", ExitCode.USAGE)],
        }
    )
    waiter, items = _watch(api, jobs, pollers=1)
    assert waiter.run(timeout=30)
    assert items[0].ok
    assert (items[1].row.status, items[1].problem, items[1].ok) == ("AWAITING_UPLOAD", "bad request", False)
    assert len([c for c in api.calls if c[1] == jobs[1]]) == 1


def test_timeout_returns_with_the_unfinished_jobs() -> None:
    job = "d" * 32
    api = FakeApi({job: [_job(job, "IN_PROGRESS")]})
    waiter, _ = _watch(api, [job], pollers=1, poll_wait=0, pace=0.01)
    assert waiter.run(timeout=0.2) is False
    assert waiter.unfinished == [job]


# --- saving results -----------------------------------------------------------------------------


def test_results_keep_their_relative_path_with_the_results_type(tmp_path: Path) -> None:
    api = FakeApi()
    out = tmp_path / "out"
    item = Watched(row=JobRow(job_id="e" * 32, target="t", status="SUCCESS"), view=_job("e" * 32, "SUCCESS"))
    item.relative = "trip/day1/beach.jpg"
    Saver(api, out)(item)
    assert item.saved == out.resolve() / "trip" / "day1" / "beach.png"
    assert item.saved.read_bytes() == PNG
    unnamed = Watched(row=JobRow(job_id="f" * 32, target="t", status="SUCCESS"), view=_job("f" * 32, "SUCCESS"))
    Saver(api, out)(unnamed)
    assert unnamed.saved == out.resolve() / f"{'f' * 32}.png"


@pytest.mark.parametrize("hostile", ["../../escaped.jpg", "/tmp/escaped.jpg", "a/../../escaped.jpg", "a\\..\\x.jpg"])
def test_a_hostile_manifest_cannot_write_outside_out(tmp_path: Path, hostile: str, fast) -> None:
    job = "1" * 32
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    (out / MANIFEST).write_text(json.dumps({"jobs": {job: hostile}}))
    ctx = Ctx(FakeApi(), job_ids=[job], out=out, side_by_side=False, timeout=30)
    code = wait.run(ctx.args, ctx)
    assert code == ExitCode.JOBS_FAILED
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != MANIFEST]
    assert written == []
    assert "refusing to write a result outside --out" in ctx.stdout.getvalue()


def test_wait_names_results_as_swap_did_through_the_manifest(tmp_path: Path, fast) -> None:
    api = FakeApi()
    out = tmp_path / "out"
    code, _ = _run_swap(api, "alice", str(_folder(tmp_path / "p", 2)), out=None)
    assert code == ExitCode.OK
    ids = [f"{n:032x}" for n in range(2)]
    wait.write_manifest(out, {ids[0]: "sub0/img000.jpg", ids[1]: "sub1/img001.jpg"})
    ctx = Ctx(api, job_ids=ids, out=out, side_by_side=False, timeout=30, json_mode=True)
    assert wait.run(ctx.args, ctx) == ExitCode.OK
    lines = [json.loads(line) for line in ctx.stdout.getvalue().splitlines()]
    assert [Path(line["result"]).relative_to(out.resolve()).as_posix() for line in lines] == [
        "sub0/img000.png",
        "sub1/img001.png",
    ]


def test_swap_wait_out_end_to_end_on_fakes(tmp_path: Path, fast) -> None:
    ids = [f"{n:032x}" for n in range(4)]
    scripts = {j: [_job(j, "PENDING"), _job(j, "SUCCESS")] for j in ids}
    scripts[ids[3]] = [_job(ids[3], "REJECTED", failReason="not a photo")]
    api = FakeApi(scripts)
    out = tmp_path / "out"
    code, ctx = _run_swap(api, "alice", str(_folder(tmp_path / "p", 4)), out=out)
    assert code == ExitCode.JOBS_FAILED
    saved = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert saved == ["sub0/img000.png", "sub0/img003.png", "sub1/img001.png"]  # sub2/img002.jpg was job 3
    assert "not a photo" in ctx.stdout.getvalue()
    progress = ctx.stderr.getvalue()
    assert "waiting for 4 jobs" in progress and "REJECTED" in progress
    assert json.loads((out / MANIFEST).read_text())["jobs"][ids[0]] == "sub0/img000.jpg"


def test_a_side_by_side_that_cannot_be_made_is_a_warning_not_a_failure(tmp_path: Path, fast) -> None:
    out = tmp_path / "out"
    root = _folder(tmp_path / "p", 1)
    code, ctx = _run_swap(FakeApi(), "alice", str(root), out=out, side_by_side=True, json_mode=True)
    assert code == ExitCode.OK
    assert (out / "sub0" / "img000.png").exists()
    (line,) = map(json.loads, ctx.stdout.getvalue().splitlines())
    assert line["warning"].startswith("no side-by-side image: the face or the target could not be read")
    assert "problem" not in line and "sideBySide" not in line


def test_a_result_that_cannot_be_written_fails_that_job_only(tmp_path: Path, fast) -> None:
    out = tmp_path / "out"
    (out / "sub0").mkdir(parents=True)
    (out / "sub0" / "img000.png").mkdir()  # a folder where the result should go
    code, ctx = _run_swap(FakeApi(), "alice", str(_folder(tmp_path / "p", 2)), out=out, json_mode=True)
    assert code == ExitCode.JOBS_FAILED
    lines = {Path(line["target"]).name: line for line in map(json.loads, ctx.stdout.getvalue().splitlines())}
    assert lines["img000.jpg"]["problem"].startswith("saving the result failed")
    assert lines["img001.jpg"]["result"] == str(out.resolve() / "sub1" / "img001.png")


def test_wait_refuses_what_is_not_a_job_id() -> None:
    ctx = Ctx(FakeApi(), job_ids=["../x"], out=None, side_by_side=False, timeout=None)
    with pytest.raises(CliError, match="is not a job id"):
        wait.run(ctx.args, ctx)


def test_resume_command_is_ready_to_paste() -> None:
    args = argparse.Namespace(local="/tmp/my stack.json", stack=None, region=None, profile=None)
    command = resume_command(args, ["a" * 32, "b" * 32], Path("out dir"))
    assert command == f"swapdrop --local '/tmp/my stack.json' wait {'a' * 32} {'b' * 32} --out 'out dir'"
    args = argparse.Namespace(local="mystack", stack=None, region=None, profile=None)
    assert resume_command(args, ["c" * 32], None) == f"swapdrop --local=mystack wait {'c' * 32}"
    args = argparse.Namespace(local=None, stack="prod", region="eu-west-1", profile="ops")
    assert (
        resume_command(args, ["c" * 32], None)
        == f"swapdrop --stack prod --region eu-west-1 --profile ops wait {'c' * 32}"
    )


# --- without a jobs API -------------------------------------------------------------------------


def test_no_jobs_api_drops_into_the_inbox_and_says_so(tmp_path: Path) -> None:
    target = FakeTarget(api_url=None)
    root = _folder(tmp_path / "p", 2)
    code, ctx = _run_swap(FakeApi(), "alice", str(root), "s3://swap-bucket/in/x.jpg", target=target)
    assert code == ExitCode.OK
    assert [(key, ct) for key, _, ct in target.s3.puts] == [
        ("inbox/alice/sub0/img000.jpg", "image/jpeg"),
        ("inbox/alice/sub1/img001.jpg", "image/jpeg"),
    ]
    assert target.s3.copies == [("in/x.jpg", "inbox/alice/x.jpg")]
    assert "no jobs API" in ctx.stderr.getvalue()
    with pytest.raises(CliError, match="no jobs to wait for"):
        _run_swap(FakeApi(), "alice", str(root), target=FakeTarget(api_url=None), wait=True)
    with pytest.raises(CliError, match="to fetch"):
        _run_swap(FakeApi(), "alice", "https://example.com/a.jpg", target=FakeTarget(api_url=None))
