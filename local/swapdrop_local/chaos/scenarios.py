"""The nine scenarios of issue 6 ("The chaos suite"). Each takes a Size and a log directory,
runs on its own local stack, and returns its Figures with every broken invariant named."""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swapdrop.state_machine import DELIVERY_LEASE_SECONDS

from swapdrop_local.chaos.harness import (
    TERMINAL,
    ChaosStack,
    Figures,
    backwards,
    history_of,
    settled,
    summarise,
)
from swapdrop_local.chaos.inputs import hostile_bodies, hostile_uploads, jpeg, post, raw_request

API_KEY = f"chaos-api-key-{secrets.token_hex(12)}"
SECRETS_SEEN: dict[str, set[str]] = {"api key": {API_KEY}, "callback token": set()}
"""Every secret any scenario of this process put in play, for the secrets scan."""
FACE = "chaos"


@dataclass(frozen=True)
class Size:
    name: str
    uploads: int
    """Scenarios 1 and 5."""
    faulty: int
    callbacks: int
    expiring: int
    bodies: int
    odd_healthy: int
    huge_mib: int
    drip_seconds: float
    deadline: float
    """Seconds a scenario waits for its jobs to settle."""
    max_submit_attempts: int


FULL = Size("full", 300, 60, 60, 30, 2000, 30, 60, 40, 420, 3)
SMALL = Size("small", 20, 12, 16, 6, 200, 6, 11, 10, 75, 2)


def _upload_healthy(stack: ChaosStack, prefix: str, count: int, seed: int) -> list[str]:
    keys = []
    for index in range(count):
        key = f"inbox/{FACE}/{prefix}/{index:04d}.jpg"
        stack.put(key, jpeg(seed + index))
        keys.append(key)
    return keys


def _remember_secrets(stack: ChaosStack) -> None:
    with contextlib.suppress(Exception):  # a stack too broken to list its jobs
        SECRETS_SEEN["callback token"].update(stack.secrets_in_play()["callback token"])


def _right_terminal_state(figures: Figures, stack: ChaosStack, keys: list[str]) -> None:
    """Each job ends as its upstream task ended; a SUCCESS has its result in results/."""
    wrong: list[str] = []
    no_result: list[str] = []
    for key, items in stack.jobs_by_key().items():
        if key not in keys:
            continue
        for item in items:
            tasks = [t for t in stack.tasks_of(item["jobId"]) if t.status in ("SUCCESS", "FAILURE")]
            followed = [t for t in tasks if t.id == item.get("taskId")] or tasks
            if not followed:
                continue
            want = followed[0].status
            if item["status"] != want:
                wrong.append(f"{key}: job {item['status']}, task {want}")
            elif want == "SUCCESS" and not (item.get("resultKey") and stack.object_size(item["resultKey"])):
                no_result.append(key)
    figures.check(not wrong, f"{len(wrong)} jobs not in their task's terminal state (e.g. {wrong[:3]})")
    figures.check(not no_result, f"{len(no_result)} SUCCESS jobs without their image in results/")


def _no_backwards(figures: Figures, stack: ChaosStack, keys: list[str]) -> None:
    moves = {job: move for job, seen in stack.observed.items() if (move := backwards(seen))}
    figures.check(not moves, f"{len(moves)} jobs were seen moving backwards (e.g. {list(moves.values())[:3]})")
    items = [i for k, items in stack.jobs_by_key().items() if k in keys for i in items]
    missing = [i["jobId"] for i in items if history_of(i) is None]
    figures.check(
        not missing, f"{len(missing)} of {len(items)} jobs carry no transition history ({{from, to, at, via}} list)"
    )
    bad: list[str] = []
    for item in items:
        history = history_of(item) or []
        statuses = [str(h.get("from")) for h in history[:1]] + [str(h.get("to")) for h in history]
        move = backwards([s for s in statuses if s != "None"])
        if move or (history and history[-1].get("to") != item["status"]):
            bad.append(f"{item['jobId'][:12]}: {move or 'last entry is not the status'}")
    figures.check(not bad, f"{len(bad)} transition histories move backwards or end elsewhere (e.g. {bad[:3]})")
    figures.extra["status observations"] = sum(len(s) for s in stack.observed.values())


def _callbacks_answered(figures: Figures) -> None:
    figures.check(
        figures.http_5xx == 0 and figures.no_answer == 0,
        f"callback route answered {figures.http_5xx} times 5xx and {figures.no_answer} times not at all",
    )


# --- 1 and 5: duplicates, and crashes during them ------------------------------------------------


def duplicates(size: Size, log_dir: Path, crash: bool = False) -> Figures:
    name = "5 crashes" if crash else "1 duplicates"
    figures = Figures(name)
    count = size.uploads
    with ChaosStack(name.replace(" ", "-"), log_dir, api_key=API_KEY, submit_concurrency=4) as stack:
        stack.deliver_s3_events(3)
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        kills: Counter = Counter()
        if crash:
            stack.spawn("killer", lambda: _kill_workers(stack, kills))
        started = time.monotonic()
        keys = _upload_healthy(stack, "dup", count, 1000)
        # What only time can heal, as on AWS: a submit worker killed mid-attempt leaves its job
        # leased for the invocation's whole timeout (plus a margin), and a worker killed between
        # an outbox entry's work and its record leaves a claim of DELIVERY_LEASE_SECONDS.
        assert stack.running
        submit_lease = stack.running.functions["SubmitFunction"].spec.timeout + 30 if crash else 0
        deadline = size.deadline + (DELIVERY_LEASE_SECONDS + submit_lease if crash else 0)
        figures.drain_seconds = stack.wait_settled(keys, deadline, started)
        stack._stop.set()  # the killer stops before the figures are taken
        summarise(figures, stack, keys, exact_events=not crash)
        figures.extra["S3 events delivered"] = f"{stack.forwarded} x 3"
        if crash:
            figures.extra["workers killed"] = dict(kills)
            figures.check(bool(kills), "no worker was killed (the harness found no worker pids)")
            figures.check(
                stack.visibility_timeout_supported,
                "StackOptions has no visibility_timeout: a killed invocation's messages return after the template's",
            )
        per_job = stack.tasks_per_job()
        twice = {job: n for job, n in per_job.items() if n > 1}
        figures.check(not twice, f"{len(twice)} jobs were submitted more than once ({sum(twice.values())} tasks)")
        figures.check(
            figures.submissions == count,
            f"{figures.submissions} tasks accepted upstream for {count} uploads (want exactly {count})",
        )
        figures.check(
            figures.statuses["SUCCESS"] == count,
            f"{figures.statuses['SUCCESS']} of {count} jobs SUCCESS ({dict(figures.statuses)})",
        )
        if not crash:  # a callback whose worker was killed gets a 5xx, as from a crashed Lambda
            _callbacks_answered(figures)
        _remember_secrets(stack)
    return figures


def crashes(size: Size, log_dir: Path) -> Figures:
    return duplicates(size, log_dir, crash=True)


CRASHED_FUNCTIONS = ("SubmitFunction", "CallbackFunction", "ReconcileFunction")
"""The functions a drop-folder upload goes through: killing the jobs API's, the event entrance's or
the webhook sender's idle workers instead would only thin out the crashes this scenario is about."""


FIRST_KILL_SECONDS = (0.2, 0.5)
KILL_EVERY_SECONDS = (1.0, 3.0)
"""The first kill lands while the uploads are still arriving (the local stack drains the small run's 20 jobs
in about 3 s since moto has a process of its own); then one every 1-3 s."""


def _kill_workers(stack: ChaosStack, kills: Counter) -> None:
    """SIGKILL one random worker of the pipeline's functions, soon and then every 1-3 s (only our own child
    processes)."""
    rng = random.Random(5)  # noqa: S311 - chaos, not security
    assert stack.running
    wait = rng.uniform(*FIRST_KILL_SECONDS)
    while not stack._stop.wait(wait):
        wait = rng.uniform(*KILL_EVERY_SECONDS)
        victims = [(name, pid) for name in CRASHED_FUNCTIONS for pid in stack.worker_pids(name) if _is_our_child(pid)]
        if not victims:
            continue
        name, pid = rng.choice(victims)
        try:
            os.kill(pid, signal.SIGKILL)
            kills[name] += 1
        except ProcessLookupError:
            pass


def _is_our_child(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1]) == os.getpid()
    except (OSError, ValueError):
        return False
    return False


# --- 2: upstream faults ----------------------------------------------------------------------------


def upstream_faults(size: Size, log_dir: Path) -> Figures:
    figures = Figures("2 upstream faults")
    faults = ["status=503@0.2", "timeout=5@0.1", "code=23@0.1"]
    parameters = {"MaxSubmitAttempts": str(size.max_submit_attempts)}
    with ChaosStack(
        "upstream-faults", log_dir, api_key=API_KEY, emulator={"faults": faults}, parameters=parameters
    ) as stack:
        stack.emulator.faults.next("status=429", count=max(4, size.faulty // 5))
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        started = time.monotonic()
        keys = _upload_healthy(stack, "faults", size.faulty, 2000)
        figures.drain_seconds = stack.wait_settled(keys, size.deadline + 60 * size.max_submit_attempts, started)
        summarise(figures, stack, keys)
        by_key = stack.jobs_by_key()
        unmatched = [key for key in stack.dlq_keys() if not any(i["status"] == "FAILURE" for i in by_key.get(key, []))]
        figures.check(
            not unmatched, f"{len(unmatched)} DLQ messages have no job that says FAILURE (e.g. {unmatched[:3]})"
        )
        reasonless = [
            k for k in keys for i in by_key.get(k, []) if i["status"] == "FAILURE" and not i.get("failReason")
        ]
        figures.check(not reasonless, f"{len(reasonless)} FAILURE jobs without a failReason")
        _right_terminal_state(figures, stack, keys)
        _callbacks_answered(figures)
        _remember_secrets(stack)
    return figures


# --- 3: callback chaos -----------------------------------------------------------------------------


def callback_chaos(size: Size, log_dir: Path) -> Figures:
    figures = Figures("3 callback chaos")
    faults = [
        "drop_callbacks@0.3",
        "duplicate_callbacks=2@0.2",
        "reorder_callbacks=shuffle",
        "ignore_notify_hook@0.15",
        "fail=no%20face%20in%20the%20target@0.2",
    ]
    with ChaosStack("callback-chaos", log_dir, api_key=API_KEY, emulator={"faults": faults}) as stack:
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        stack.observe_statuses()
        started = time.monotonic()
        keys = _upload_healthy(stack, "callbacks", size.callbacks, 3000)
        figures.drain_seconds = stack.wait_settled(keys, size.deadline, started)
        summarise(figures, stack, keys)
        _right_terminal_state(figures, stack, keys)
        _no_backwards(figures, stack, keys)
        _callbacks_answered(figures)
        _remember_secrets(stack)
    return figures


# --- 4: expiring result URLs -------------------------------------------------------------------------


def expiring_results(size: Size, log_dir: Path) -> Figures:
    figures = Figures("4 expiring results")
    faults = ["drop_callbacks=final@0.5"]
    with ChaosStack(
        "expiring-results", log_dir, api_key=API_KEY, emulator={"faults": faults, "result_ttl_seconds": 2.0}
    ) as stack:
        from swapdrop_emulator import faults as emulator_faults

        # One result drips a byte every 2 s: its callback must still be answered within the
        # relay's callback timeout (the copy gives up early; the reconciler copies later).
        drip = "drip" in emulator_faults.KINDS
        if drip:
            stack.emulator.faults.next("drip=2")
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        started = time.monotonic()
        keys = _upload_healthy(stack, "expiring", size.expiring, 4000)
        figures.drain_seconds = stack.wait_settled(keys, size.deadline + 120 * drip, started)
        summarise(figures, stack, keys)
        unexplained, copied, explained = [], 0, 0
        for key, items in stack.jobs_by_key().items():
            for item in items:
                if key not in keys or item["status"] != "SUCCESS":
                    continue
                if item.get("resultKey") and stack.object_size(item["resultKey"]):
                    copied += 1
                elif item.get("resultCopyError"):
                    explained += 1
                else:
                    unexplained.append(key)
        figures.extra.update({"results copied": copied, "copy failed with a reason": explained, "drip": drip})
        figures.check(not unexplained, f"{len(unexplained)} SUCCESS jobs have no image in results/ and no reason why")
        _callbacks_answered(figures)
        _remember_secrets(stack)
    return figures


# --- 6: hostile callbacks ------------------------------------------------------------------------------


def hostile_callbacks(size: Size, log_dir: Path) -> Figures:
    figures = Figures("6 hostile callbacks")
    with ChaosStack("hostile-callbacks", log_dir, api_key=API_KEY) as stack:
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        stack.emulator.faults.next("stall=45", count=3)
        stalled = _upload_healthy(stack, "stalled", 3, 6000)
        _wait_until(lambda: _all_in_progress(stack, stalled), 60)
        finished = _upload_healthy(stack, "finished", 3, 6100)
        stack.wait_settled(finished, 60, time.monotonic())
        items = [i for k, its in stack.jobs_by_key().items() if k in stalled + finished for i in its]
        secret = stack.callback_secret()
        targets = [(i["jobId"], stack.token(i["jobId"], secret)) for i in items]
        task_ids = {str(i.get("taskId")) for i in items if i.get("taskId")}
        before = {i["jobId"]: i.get("version") for i in stack.items()}
        figures.uploads = len(items)

        def send(job_id: str, token: str | None, body: bytes) -> None:
            answer = post(stack.callback_url(job_id, token), body, timeout=30)
            figures.count_answer(answer.status)

        sent = _send_generated(stack, figures, targets, task_ids, size.bodies, send)
        figures.extra["generated bodies"] = sent
        _framing_cases(stack, figures, targets[0], size)
        after = {i["jobId"]: i.get("version") for i in stack.items()}
        changed = [job for job in before if after.get(job) != before[job]]
        figures.check(not changed, f"{len(changed)} of {len(before)} jobs were written (version changed)")
        figures.check(sent >= size.bodies, f"only {sent} generated bodies sent (want {size.bodies})")
        figures.check(figures.http_2xx == 0, f"{figures.http_2xx} hostile requests got a 2xx")
        figures.check(figures.http_5xx == 0, f"{figures.http_5xx} hostile requests got a 5xx")
        figures.check(figures.no_answer == 0, f"{figures.no_answer} hostile requests got no answer (dropped)")
        figures.statuses = Counter(i["status"] for i in stack.items())
        figures.submissions = len(stack.emulator.tasks)
        figures.submit_requests = len(stack.emulator.swaps)
        _remember_secrets(stack)
    return figures


def _all_in_progress(stack: ChaosStack, keys: list[str]) -> bool:
    by_key = stack.jobs_by_key()
    return all(k in by_key and by_key[k][0]["status"] == "IN_PROGRESS" for k in keys)


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        if condition():
            return True
        time.sleep(0.3)
    return False


def _send_generated(
    stack: ChaosStack,
    figures: Figures,
    targets: list[tuple[str, str]],
    task_ids: set[str],
    count: int,
    send: Callable[[str, str | None, bytes], None],
) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    sent = 0
    skipped = 0

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(body=hostile_bodies(), which=st.integers(min_value=0, max_value=99))
    def one(body: bytes, which: int) -> None:
        nonlocal sent, skipped
        if any(task_id.encode() in body for task_id in task_ids):
            skipped += 1  # a real task id would make a legitimate snapshot
            return
        job_id, token = targets[which % len(targets)]
        if which >= 90:
            job_id = f"no-such-job-{which}"
        elif which >= 70:
            token = secrets.token_urlsafe(32)
        send(job_id, token, body)
        sent += 1

    one()
    figures.extra["bodies skipped (named a real task)"] = skipped
    return sent


def _framing_cases(stack: ChaosStack, figures: Figures, target: tuple[str, str], size: Size) -> None:
    url = stack.callback_url(*target)
    body = b'{"id": "424242", "status": "SUCCESS", "imageUrl": "http://127.0.0.1:9/x.png"}'
    chunked = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:20], body[20:])) + b"0\r\n\r\n"
    json_type = "Content-Type: application/json"
    cases = {
        "Content-Length -1": raw_request(url, [json_type, "Content-Length: -1"], body, half_close=True),
        "Content-Length abc": raw_request(url, [json_type, "Content-Length: abc"], body),
        "two Content-Lengths": raw_request(
            url, [json_type, "Content-Length: 10", f"Content-Length: {len(body)}"], body
        ),
        "chunked": raw_request(url, [json_type, "Transfer-Encoding: chunked"], chunked),
        "truncated, closed": raw_request(url, [json_type, "Content-Length: 500"], body, half_close=True),
        "truncated, held open": raw_request(url, [json_type, "Content-Length: 500"], body, timeout=45),
        "300 KiB body": raw_request(
            url, [json_type, f"Content-Length: {300 * 1024}"], b"[" + b" " * (300 * 1024 - 2) + b"]"
        ),
        "11 MiB body": raw_request(url, [json_type, f"Content-Length: {11 * 1024 * 1024}"], b"x" * (11 * 1024 * 1024)),
        "Content-Length 10^12": raw_request(url, [json_type, "Content-Length: 1000000000000"], b"", half_close=True),
    }
    during: dict[str, float | None] = {}

    def meanwhile() -> None:
        time.sleep(2)
        answer = post(url, body, timeout=30)
        figures.count_answer(answer.status)
        during["status"], during["seconds"] = answer.status, answer.seconds

    helper = threading.Thread(target=meanwhile, daemon=True)
    helper.start()
    cases["drip (1 byte/s)"] = raw_request(
        url,
        [json_type, "Content-Length: 100000"],
        b"",
        drip_interval=1.0,
        drip_bytes=int(size.drip_seconds),
        timeout=size.drip_seconds + 30,
    )
    helper.join(timeout=40)
    for answer in cases.values():
        figures.count_answer(answer.status)
    figures.extra["framing"] = {name: answer.status for name, answer in cases.items()}
    figures.extra["answer during the drip"] = during
    bad = {name: a.status for name, a in cases.items() if a.status is None or not 400 <= a.status < 500}
    figures.check(not bad, f"framing/size/drip cases without a 4xx: {bad}")


# --- 7: hostile uploads ------------------------------------------------------------------------------------


def hostile_uploads_scenario(size: Size, log_dir: Path) -> Figures:
    figures = Figures("7 hostile uploads")
    with ChaosStack("hostile-uploads", log_dir, api_key=API_KEY) as stack:
        stack.put("faces/hostile.jpg", jpeg(1))
        stack.put("faces/amb.jpg", jpeg(2))
        stack.put("faces/amb.png", jpeg(3))
        cases = hostile_uploads("hostile", "amb", size.huge_mib)
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.1):
                stack.sample_rss()

        stack.spawn("rss", sample)
        started = time.monotonic()
        uploaded = []
        for case in cases:
            try:
                stack.put(case.key, case.data)
                uploaded.append(case)
            except Exception as error:
                figures.extra[f"not uploadable: {case.name}"] = type(error).__name__
        keys = [c.key for c in uploaded]
        figures.drain_seconds = stack.wait_settled(keys, size.deadline, started)
        sampling.set()
        stack.sample_rss()
        summarise(figures, stack, keys)
        by_key = stack.jobs_by_key()
        wrong = []
        for case in uploaded:
            items = by_key.get(case.key, [])
            item = items[0] if items else {}
            reason = item.get("failReason") or ""
            if item.get("status") != "REJECTED" or not re.search(case.reason, reason, re.IGNORECASE):
                wrong.append(f"{case.name}: {item.get('status', 'no job')} {reason[:60]!r}")
        figures.check(
            not wrong, f"{len(wrong)} of {len(uploaded)} hostile uploads not REJECTED with their reason: {wrong}"
        )
        figures.check(figures.submit_requests == 0, f"{figures.submit_requests} upstream submit requests (want 0)")
        peak = max(stack.rss_peak_kib.values(), default=0) / 1024
        figures.peak_rss_mib = round(peak, 1)
        limit = stack.memory_limit_mib("SubmitFunction")
        figures.check(bool(stack.rss_peak_kib), "no submit worker's peak RSS could be read")
        figures.check(peak <= limit, f"submit worker peak RSS {peak:.0f} MiB over its MemorySize {limit} MiB")
        _remember_secrets(stack)
    return figures


# --- 8: hostile upstream ------------------------------------------------------------------------------------


def hostile_upstream(size: Size, log_dir: Path) -> Figures:
    figures = Figures("8 hostile upstream")
    from swapdrop_emulator import faults as emulator_faults

    if "odd_snapshot" not in emulator_faults.KINDS:
        figures.violations.append("the emulator has no odd_snapshot fault yet: scenario not run")
        return figures
    from swapdrop_emulator.hostile import ODD_KINDS

    faults = ["drop_callbacks=final@0.4", "list:odd_snapshot=inf; list:odd_snapshot_ratio=0.2", "list:non_list@0.2"]
    with ChaosStack("hostile-upstream", log_dir, api_key=API_KEY, emulator={"faults": faults}) as stack:
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        for kind in ODD_KINDS:
            stack.emulator.faults.next(f"odd_snapshot={kind}")
        started = time.monotonic()
        keys = _upload_healthy(stack, "odd", len(ODD_KINDS), 8000)
        _wait_until(lambda: len(stack.emulator.swaps) >= len(ODD_KINDS), 30)
        keys += _upload_healthy(stack, "healthy", size.odd_healthy, 8100)
        figures.drain_seconds = stack.wait_settled(keys, size.deadline, started)
        summarise(figures, stack, keys)
        healthy_wrong, odd_wrong, odd = [], [], 0
        for key, items in stack.jobs_by_key().items():
            if key not in keys:
                continue
            item = items[0]
            tasks = stack.tasks_of(item["jobId"])
            kind = next(
                (getattr(t.faults, "odd_snapshot", None) for t in tasks if getattr(t.faults, "odd_snapshot", None)),
                None,
            )
            if kind:
                odd += 1
                if item["status"] not in ("FAILURE", "SUCCESS") or (
                    item["status"] == "FAILURE" and not item.get("failReason")
                ):
                    odd_wrong.append(f"{kind}: {item['status']}")
                elif len(item.get("failReason") or "") > 8192:
                    odd_wrong.append(f"{kind}: failReason of {len(item['failReason'])} chars")
            elif item["status"] != "SUCCESS":
                healthy_wrong.append(f"{key}: {item['status']} {str(item.get('failReason'))[:60]!r}")
        figures.extra["odd tasks"] = odd
        figures.check(odd == len(ODD_KINDS), f"{odd} odd tasks upstream (want {len(ODD_KINDS)})")
        figures.check(
            not healthy_wrong, f"{len(healthy_wrong)} healthy jobs did not finish SUCCESS: {healthy_wrong[:3]}"
        )
        figures.check(not odd_wrong, f"{len(odd_wrong)} odd jobs did not end with a reason: {odd_wrong}")
        _callbacks_answered(figures)
        _remember_secrets(stack)
    return figures


# --- 9: secrets ----------------------------------------------------------------------------------------------

BASE64_IMAGE = re.compile(rb"/9j/[A-Za-z0-9+/]{16}|iVBORw0KGgo|[A-Za-z0-9+/]{200,}={0,2}")


def secrets_scan(size: Size, log_dir: Path) -> Figures:
    """Runs a few jobs and forged callbacks of its own, then scans every log of this run."""
    figures = Figures("9 secrets")
    with ChaosStack("secrets", log_dir, api_key=API_KEY) as stack:
        stack.put(f"faces/{FACE}.jpg", jpeg(0))
        started = time.monotonic()
        keys = _upload_healthy(stack, "secrets", 3, 9000)
        figures.drain_seconds = stack.wait_settled(keys, 60, started)
        summarise(figures, stack, keys)
        for item in stack.items():
            url = stack.callback_url(item["jobId"], stack.token(item["jobId"]))
            figures.count_answer(post(url, b'{"id": "1", "status": "EXPLODED"}').status)
            figures.count_answer(post(url, b"not json").status)
        _remember_secrets(stack)
    needles = {kind: {s.encode() for s in values if s} for kind, values in SECRETS_SEEN.items()}
    hits: Counter = Counter()
    where: list[str] = []
    lines = 0
    for path in sorted(log_dir.glob("*.log")):
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                lines += 1
                found = [kind for kind, values in needles.items() if any(v in line for v in values)]
                if BASE64_IMAGE.search(line):
                    found.append("base64 image data")
                for kind in found:
                    hits[kind] += 1
                    if len(where) < 5:
                        where.append(f"{path.name}:{number} ({kind})")
    figures.extra.update(
        {"log files": len(list(log_dir.glob("*.log"))), "log lines": lines, "tokens": len(needles["callback token"])}
    )
    figures.check(lines > 0, "no log lines captured")
    figures.check(not hits, f"secrets in logs: {dict(hits)} at {where}")
    return figures


Scenario = Callable[[Size, Path], Figures]
SCENARIOS: dict[str, Scenario] = {
    "duplicates": duplicates,
    "upstream-faults": upstream_faults,
    "callback-chaos": callback_chaos,
    "expiring-results": expiring_results,
    "crashes": crashes,
    "hostile-callbacks": hostile_callbacks,
    "hostile-uploads": hostile_uploads_scenario,
    "hostile-upstream": hostile_upstream,
    "secrets": secrets_scan,
}


def run(name: str, size: Size, log_dir: Path) -> Figures:
    """One scenario; a harness error is reported as a broken invariant, never raised."""
    try:
        return SCENARIOS[name](size, log_dir)
    except Exception as error:
        figures = Figures(name)
        figures.violations.append(f"the scenario crashed: {type(error).__name__}: {str(error)[:300]}")
        return figures


__all__ = ["FULL", "SCENARIOS", "SMALL", "TERMINAL", "Size", "run", "settled"]
