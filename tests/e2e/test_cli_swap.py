"""`swapdrop swap` and `swapdrop wait` as a person runs them: the console script as a subprocess
against a running local stack (real HTTP, SigV4, presigned POSTs, moto), with the echo engine."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from swapdrop_local.auth import signed_request
from swapdrop_local.provision import local_client

from e2e.conftest import FIXTURES, SWAPDROP, CliStack, run_cli

FACE = "h2-swap-face"
JOB_LINE = re.compile(r"^([0-9a-f]{32})\s+(\S+)\s+(\d+)%")


@pytest.fixture(scope="module")
def face(cli_stack: CliStack) -> str:
    added = run_cli("face", "add", FACE, str(FIXTURES / "grace_hopper.jpg"), stack=cli_stack)
    assert added.returncode == 0, added.stderr
    return FACE


def _variants(root: Path, count: int) -> list[str]:
    """`count` distinct images from the fixtures (rotated, mirrored, resized; JPEG and PNG), in nested
    folders, plus files that are not images; their paths relative to `root`."""
    sources = [Image.open(FIXTURES / name).convert("RGB") for name in ("grace_hopper.jpg", "astronaut.png")]
    relatives = []
    for n in range(count):
        image = sources[n % 2].rotate(n * 11).resize((160 + n, 160))
        if n % 3 == 0:
            image = ImageOps.mirror(image)
        folder = "" if n % 5 == 0 else f"trip/day{n % 3}/" if n % 2 else f"set{n % 4}/"
        relative = f"{folder}img{n:02d}.{'png' if n % 2 else 'jpg'}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / relative)
        relatives.append(relative)
    (root / "notes.txt").write_text("not an image")
    (root / "trip" / ".hidden.jpg").write_bytes((root / relatives[0]).read_bytes())
    return relatives


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_folder_of_20_images_waits_with_progress_and_writes_20_results(
    cli_stack: CliStack, face: str, tmp_path: Path
) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    relatives = _variants(photos, 20)
    started = time.monotonic()
    done = run_cli("swap", face, str(photos), "--wait", "--out", str(out), stack=cli_stack, timeout=300)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    # Progress on stderr (not a terminal here: one line per change), each job seen to the end.
    assert "waiting for 20 jobs" in done.stderr
    assert "notes.txt: not an image" in done.stderr and ".hidden.jpg" not in done.stderr
    lines = [JOB_LINE.match(line) for line in done.stderr.splitlines()]
    statuses: dict[str, list[str]] = {}
    for line in filter(None, lines):
        statuses.setdefault(line.group(1), []).append(line.group(2))
    assert len(statuses) == 20
    assert all(seen[-1] == "SUCCESS" for seen in statuses.values())
    assert "20 of 20 succeeded" in done.stderr
    # 20 results under the targets' relative paths, with the result's type (the echo engine answers PNG).
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name[0] != ".")
    assert written == sorted(r.rsplit(".", 1)[0] + ".png" for r in relatives)
    for relative in relatives:
        result = Image.open(out / (relative.rsplit(".", 1)[0] + ".png"))
        assert result.size == Image.open(photos / relative).size
    # The summary on stdout names every job and where its result went.
    assert done.stdout.count("SUCCESS") == 20 and str(out) in done.stdout
    print(f"\n20 images: {elapsed:.1f} s wall, {20 / elapsed:.2f} jobs/s (subprocess, local stack, echo engine)")


def test_one_file_with_json_lines(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    target = tmp_path / "beach.png"
    target.write_bytes((FIXTURES / "astronaut.png").read_bytes())
    created = run_cli("swap", face, str(target), "--json", stack=cli_stack)
    assert created.returncode == 0, created.stderr
    (line,) = _json_lines(created.stdout)
    assert set(line) == {"jobId", "target", "status"}
    assert (line["target"], line["status"]) == (str(target), "AWAITING_UPLOAD")
    # The same job, waited for later by id: the result is named as swap would have.
    out = tmp_path / "out"
    waited = run_cli("wait", line["jobId"], "--out", str(out), "--json", stack=cli_stack)
    assert waited.returncode == 0, waited.stderr
    (final,) = _json_lines(waited.stdout)
    assert (final["jobId"], final["status"]) == (line["jobId"], "SUCCESS")
    assert final["result"] == str(out.resolve() / f"{line['jobId']}.png")
    assert Path(final["result"]).stat().st_size > 0


def test_an_s3_target_in_the_stacks_bucket(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    info = cli_stack.info
    s3 = local_client("s3", info["region"], info["endpoint_url"])
    s3.put_object(Bucket=info["bucket"], Key="library/h2/astronaut.png", Body=(FIXTURES / "astronaut.png").read_bytes())
    out = tmp_path / "out"
    done = run_cli(
        "swap", face, f"s3://{info['bucket']}/library/h2/astronaut.png", "--out", str(out), "--side-by-side",
        stack=cli_stack,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(out / "astronaut.png").size == Image.open(FIXTURES / "astronaut.png").size
    side = Image.open(out / "astronaut.side-by-side.jpg")
    assert side.format == "JPEG" and side.width > 2 * side.height  # three panels
    other = run_cli("swap", face, "s3://someone-elses-bucket/a.jpg", stack=cli_stack)
    assert other.returncode == 2
    assert "not the stack's bucket" in other.stderr


def test_usage_errors_exit_2_before_anything_is_sent(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    missing = run_cli("swap", face, str(tmp_path / "missing.jpg"), stack=cli_stack)
    assert missing.returncode == 2
    assert f"error: no such file or folder: {tmp_path / 'missing.jpg'}" in missing.stderr
    plain = run_cli("swap", face, "http://example.com/a.jpg", "--json", stack=cli_stack)
    assert plain.returncode == 2 and "plain-http" in plain.stderr
    assert _json_lines(plain.stdout)[0]["error"]["exitCode"] == 2
    bad_face = run_cli("swap", "a/b", str(FIXTURES / "grace_hopper.jpg"), stack=cli_stack)
    assert bad_face.returncode == 2 and "face name" in bad_face.stderr
    no_face = run_cli("swap", "h2-nobody", str(FIXTURES / "astronaut.png"), stack=cli_stack)
    assert no_face.returncode == 2 and "no face 'h2-nobody'" in no_face.stderr
    assert "swapdrop face add h2-nobody IMAGE" in no_face.stderr
    unknown = run_cli("wait", "0" * 32, stack=cli_stack)
    assert unknown.returncode == 2 and f"no job {'0' * 32}" in unknown.stderr


def test_a_rejected_job_exits_1_with_its_reason(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    (tmp_path / "good.png").write_bytes((FIXTURES / "astronaut.png").read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10)
    done = run_cli("swap", face, str(tmp_path), "--wait", "--json", stack=cli_stack)
    assert done.returncode == 1, done.stderr
    by_target = {Path(line["target"]).name: line for line in _json_lines(done.stdout)}
    assert by_target["good.png"]["status"] == "SUCCESS"
    assert by_target["broken.jpg"]["status"] == "REJECTED"
    assert "damaged or truncated" in by_target["broken.jpg"]["failReason"]
    assert "1 of 2 succeeded" in done.stderr


def test_ctrl_c_stops_waiting_not_the_job_and_says_how_to_resume(
    cli_stack: CliStack, face: str, tmp_path: Path
) -> None:
    (tmp_path / "slow.png").write_bytes((FIXTURES / "astronaut.png").read_bytes())
    cli_stack.running.emulator.faults.next_submits.append("stall=45")  # the task stops at 45% until cancelled
    command = [str(SWAPDROP), "swap", face, str(tmp_path / "slow.png"), "--wait", "--local", str(cli_stack.info_file)]
    # PYTHONFAULTHANDLER: if the CLI ever fails to stop, SIGABRT makes it print every thread's stack.
    env = {**_env(), "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_ctrl_c_as_from_a_terminal,
    )
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not any("IN_PROGRESS" in line and "45%" in line for line in stderr):
        assert process.poll() is None, "".join(stderr)
        assert time.monotonic() < deadline, "".join(stderr)
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        reader.join(timeout=10)
        pytest.fail("swapdrop swap --wait did not stop within 30 s of Ctrl-C; its stderr:\n" + "".join(stderr))
    reader.join(timeout=10)
    assert process.returncode == 130, "".join(stderr)
    text = "".join(stderr)
    assert "stopped waiting; the jobs go on" in text
    assert "Traceback" not in text
    resume = shlex.split(text.strip().splitlines()[-1])
    job_id = resume[-1]
    assert resume == ["swapdrop", "--local", str(cli_stack.info_file), "wait", job_id]
    # The job went on: still open, waited for again by the printed command, here with a short timeout.
    again = run_cli(*resume[1:], "--timeout", "2", "--json", stack=cli_stack, target=False)
    assert again.returncode == 1
    assert _json_lines(again.stdout)[0]["status"] == "IN_PROGRESS"
    assert "still waiting after 2s" in again.stderr
    cancelled = signed_request(cli_stack.info, "POST", f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    finished = run_cli(*resume[1:], "--json", stack=cli_stack, target=False)
    assert finished.returncode == 1
    assert _json_lines(finished.stdout)[0]["status"] == "CANCELLED"


def _ctrl_c_as_from_a_terminal() -> None:
    """SIGINT at its default in the CLI, as a shell gives a foreground command. A background job (`cmd &`
    in a script, as CI may start this suite) inherits SIGINT ignored, and Python then rightly keeps
    ignoring it: Ctrl-C would never reach the CLI, and this test would wait for nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    cleared = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "SWAPDROP_STACK", "AWS_REGION")
    return {key: value for key, value in os.environ.items() if key not in cleared}


def test_the_same_idempotency_key_twice_is_the_same_jobs(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    _variants(tmp_path / "photos", 3)
    command = ("swap", face, str(tmp_path / "photos"), "--idempotency-key", f"h2-{tmp_path.name}", "--wait", "--json")
    first = run_cli(*command, stack=cli_stack)
    second = run_cli(*command, stack=cli_stack)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    ids = [[line["jobId"] for line in _json_lines(run.stdout)] for run in (first, second)]
    assert ids[0] == ids[1] and len(set(ids[0])) == 3
    assert all(line["status"] == "SUCCESS" for line in _json_lines(second.stdout))


def test_on_a_terminal_the_progress_is_a_live_table(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    """A real pseudo-terminal: rich draws (and redraws) the table on stderr; stdout keeps the summary."""
    import pty

    _variants(tmp_path / "photos", 3)
    primary, secondary = pty.openpty()
    command = [str(SWAPDROP), "swap", face, str(tmp_path / "photos"), "--wait", "--local", str(cli_stack.info_file)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=secondary, env={**_env(), "COLUMNS": "120", "TERM": "xterm"}
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if not select.select([primary], [], [], 1.0)[0]:
            continue
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    else:
        process.kill()
    stdout = process.communicate(timeout=120)[0].decode()
    os.close(primary)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, screen
    assert "\x1b[" in screen, "a terminal gets rich's cursor movements and colours"
    assert "3/3 finished" in screen and "elapsed" in screen and "waiting for" not in screen
    assert stdout.count("SUCCESS") == 3 and "\x1b[" not in stdout


def test_url_targets_and_a_target_the_api_refuses_in_a_batch(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    """Per-target errors (BatchEntry.error) are reported and counted; the batch's other jobs go on.
    Only loopback URLs: the local stack fetches them (nothing listens on port 9, so that job fails)."""
    (tmp_path / "good.png").write_bytes((FIXTURES / "astronaut.png").read_bytes())
    too_long = "https://127.0.0.1/" + "a" * 2100 + ".jpg"
    done = run_cli(
        "swap", face, str(tmp_path / "good.png"), "https://127.0.0.1:9/x.jpg", too_long, "--wait", "--json",
        stack=cli_stack,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = _json_lines(done.stdout)
    refused = [line for line in lines if line["status"] == "REFUSED"]
    assert len(refused) == 1 and refused[0]["target"] == too_long and refused[0]["jobId"] is None
    assert refused[0]["error"]["code"] == "invalid_request"
    assert f"error: {too_long}: invalid_request" in done.stderr
    by_target = {line["target"]: line for line in lines if line["jobId"]}
    assert by_target[str(tmp_path / "good.png")]["status"] == "SUCCESS"
    assert by_target["https://127.0.0.1:9/x.jpg"]["status"] == "REJECTED"
    assert "could not fetch" in by_target["https://127.0.0.1:9/x.jpg"]["failReason"]


def test_refused_credentials_exit_4_before_anything_is_uploaded(cli_stack: CliStack, tmp_path: Path) -> None:
    info = json.loads(cli_stack.info_file.read_text())
    info["api_credentials"]["secret_access_key"] = "z" * 40
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(info))
    for command in (("swap", FACE, str(FIXTURES / "astronaut.png"), "--wait"), ("wait", "0" * 32)):
        answer = run_cli(*command, "--local", str(tampered), "--json")
        assert answer.returncode == 4, (command, answer.stderr)
        assert "the jobs API refused the request (403" in answer.stderr
        assert json.loads(answer.stdout)["error"]["exitCode"] == 4


def test_a_deployed_target_through_cloudformation_outputs(cli_stack: CliStack, face: str, tmp_path: Path) -> None:
    """--stack NAME found through moto's CloudFormation (AWS_ENDPOINT_URL), as a deployed stack is found."""
    credentials = cli_stack.info["api_credentials"]
    env = {
        "AWS_ENDPOINT_URL": cli_stack.info["endpoint_url"],
        "AWS_ACCESS_KEY_ID": credentials["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["secret_access_key"],
        "AWS_REGION": cli_stack.info["region"],
    }
    out = tmp_path / "out"
    stack = ("--stack", cli_stack.info["stack_name"])
    done = run_cli("swap", face, str(FIXTURES / "astronaut.png"), "--out", str(out), *stack, env=env, target=False)
    assert done.returncode == 0, done.stderr
    assert (out / "astronaut.png").stat().st_size > 0
