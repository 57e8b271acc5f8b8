"""One local stack per scenario, and what the scenarios measure on it.

The figures come from the stack's own records, never from the product's word: DynamoDB
(jobs), the emulator (submit requests and accepted tasks, keyed by the job id the submit
carried in `state`), the DLQ, the EventBridge bus (a rule that copies every event into a
capture queue), the answers the harness itself got, and the functions' logs (file
descriptors 1 and 2 redirected to a file while the stack runs, so the worker processes,
which inherit them, write there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from swapdrop.callback_token import token_for
from swapdrop.jobs import TERMINAL_STATUSES, JobStatus
from swapdrop.layout import decode_event_key

from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions

TERMINAL = tuple(sorted(status.value for status in TERMINAL_STATUSES))
RANK = {status.value: status.rank for status in JobStatus}
_deserialize = TypeDeserializer().deserialize


@dataclass
class Figures:
    """One row of the table, and the invariants that broke (empty: the scenario passed)."""

    scenario: str
    uploads: int = 0
    submit_requests: int = 0
    """Authenticated submit requests the swap API received (refused and faulted ones too)."""
    submissions: int = 0
    """Tasks the swap API accepted (paid work)."""
    statuses: Counter = field(default_factory=Counter)
    dlq: int = 0
    http_4xx: int = 0
    http_5xx: int = 0
    no_answer: int = 0
    http_2xx: int = 0
    events_total: int = 0
    events_max_per_job: int = 0
    drain_seconds: float | None = None
    peak_rss_mib: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "PASS" if not self.violations else "FAIL"

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.violations.append(message)

    def count_answer(self, status: int | None) -> None:
        if status is None:
            self.no_answer += 1
        elif status >= 500:
            self.http_5xx += 1
        elif status >= 400:
            self.http_4xx += 1
        else:
            self.http_2xx += 1

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["statuses"] = dict(self.statuses)
        data["verdict"] = self.verdict
        return data


# --- logs --------------------------------------------------------------------------------


class LogCapture:
    """Redirect this process's fds 1 and 2 (inherited by every worker it spawns) and the
    stack's Python loggers into one file, for the secrets scan; restored on exit."""

    LOGGERS = ("swapdrop.local", "swapdrop_emulator")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: list[int] = []
        self._handler: logging.Handler | None = None
        self._levels: dict[str, int] = {}

    def __enter__(self) -> LogCapture:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stream in (_stdout(), _stderr()):
            with contextlib.suppress(Exception):
                stream.flush()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._saved = [os.dup(1), os.dup(2)]
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)
        self._handler = logging.FileHandler(self.path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.INFO)
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self._handler:
                logger.removeHandler(self._handler)
            logger.setLevel(self._levels.get(name, logging.NOTSET))
        if self._handler:
            self._handler.close()
        for stream in (_stdout(), _stderr()):
            with contextlib.suppress(Exception):
                stream.flush()
        if self._saved:
            os.dup2(self._saved[0], 1)
            os.dup2(self._saved[1], 2)
            for fd in self._saved:
                os.close(fd)


def _stdout() -> Any:
    import sys

    return sys.stdout


def _stderr() -> Any:
    import sys

    return sys.stderr


# --- the stack -----------------------------------------------------------------------------


class ChaosStack:
    """A RunningStack with the probes the scenarios need."""

    def __init__(
        self,
        name: str,
        log_dir: Path,
        *,
        api_key: str,
        emulator: dict[str, Any] | None = None,
        parameters: dict[str, str] | None = None,
        submit_concurrency: int | None = None,
        visibility_timeout: int = 10,
        reconcile_interval: float = 1.0,
    ) -> None:
        from swapdrop_emulator import echo_engine

        self.name = name
        self.api_key = api_key
        self.log_path = log_dir / f"{name}.log"
        options: dict[str, Any] = {
            "api_key": api_key,
            "reconcile_interval": reconcile_interval,
            "parameters": {"ReconcileQuietSeconds": "2", "UpstreamTimeoutSeconds": "3", **(parameters or {})},
            "emulator": {
                "step_delay": 0.02,
                "engine": echo_engine,
                "concurrency": 4,
                "queue_size": 100_000,
                "seed": 6,
                "callback_timeout": 15.0,
                "timeout_hold_seconds": 5.0,
                **(emulator or {}),
            },
            "submit_concurrency": submit_concurrency,
        }
        known = {f.name for f in dataclasses.fields(StackOptions)}
        if "visibility_timeout" in known:  # the local runtime's short redelivery (issue 6, item 1)
            options["visibility_timeout"] = visibility_timeout
        self.visibility_timeout_supported = "visibility_timeout" in known
        self.options = StackOptions(**options)
        self.running: RunningStack | None = None
        self._logs = LogCapture(self.log_path)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.forwarded = 0
        self.events_queue = ""
        self.observed: dict[str, list[str]] = {}
        """Statuses of each job as the observer saw them, in order (consecutive repeats dropped)."""
        self.rss_peak_kib: dict[int, int] = {}

    # lifecycle

    def __enter__(self) -> ChaosStack:
        _reset_moto()
        self._logs.__enter__()
        try:
            self.running = RunningStack(self.options).start()
            self.info = self.running.info()
            self.s3 = self.client("s3")
            self.sqs = self.client("sqs")
            self.dynamodb = self.client("dynamodb")
            self._capture_events()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        try:
            if self.running:
                self.running.stop()
        finally:
            self._logs.__exit__()
            _reset_moto()

    def client(self, service: str) -> Any:
        return local_client(service, self.info["region"], self.info["endpoint_url"])

    @property
    def emulator(self) -> Any:
        assert self.running
        return self.running.emulator

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"chaos-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stopping(self) -> bool:
        return self._stop.is_set()

    # uploads

    def put(self, key: str, data: bytes) -> str | None:
        return self.s3.put_object(Bucket=self.info["bucket"], Key=key, Body=data).get("VersionId")

    def object_size(self, key: str) -> int | None:
        try:
            return int(self.s3.head_object(Bucket=self.info["bucket"], Key=key)["ContentLength"])
        except Exception:
            return None

    def deliver_s3_events(self, copies: int) -> None:
        """Every S3 notification reaches the submit queue `copies` times: the bucket notifies
        a tap queue instead, and a pump sends each message (moto's own body) on, repeated."""
        bucket, sqs = self.info["bucket"], self.sqs
        tap = sqs.create_queue(QueueName=f"chaos-s3-tap-{self.name}")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        config = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        config.pop("ResponseMetadata", None)
        for queue in config.get("QueueConfigurations", []):
            queue["QueueArn"] = tap_arn
        self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        target = self.info["queue_url"]

        def pump() -> None:
            while not self.stopping():
                try:
                    messages = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                    for message in messages.get("Messages", []):
                        entries = [{"Id": str(i), "MessageBody": message["Body"]} for i in range(copies)]
                        sqs.send_message_batch(QueueUrl=target, Entries=entries)
                        sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])
                        self.forwarded += 1
                except Exception:
                    if not self.stopping():
                        time.sleep(0.5)

        self.spawn("s3-pump", pump)

    # DynamoDB

    def items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.info["jobs_table"], "ConsistentRead": True}
        for _ in range(1000):
            page = self.dynamodb.scan(**request)
            items.extend({k: _deserialize(v) for k, v in item.items()} for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items

    def jobs_by_key(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for item in self.items():
            found.setdefault(item.get("targetKey", ""), []).append(item)
        return found

    def observe_statuses(self, interval: float = 0.3) -> None:
        """Poll every job's status during the run (to check that none moves backwards)."""

        def watch() -> None:
            while not self._stop.wait(interval):
                with contextlib.suppress(Exception):
                    for item in self.items():
                        seen = self.observed.setdefault(item["jobId"], [])
                        if not seen or seen[-1] != item["status"]:
                            seen.append(item["status"])

        self.spawn("observer", watch)

    def wait_settled(self, keys: Iterable[str], deadline_seconds: float, started: float) -> float | None:
        """Seconds from `started` until every key has a job that is terminal with nothing left
        to do (result copied or given up, event published); None if the deadline passed."""
        wanted = set(keys)
        stop_at = time.monotonic() + deadline_seconds
        while time.monotonic() < stop_at:
            by_key = self.jobs_by_key()
            if all(k in by_key and all(settled(item) for item in by_key[k]) for k in wanted):
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None

    # the swap API's records

    def submit_requests_per_job(self) -> Counter:
        return Counter(str(swap.body.get("state")) for swap in list(self.emulator.swaps))

    def tasks_per_job(self) -> Counter:
        return Counter(task.state for task in list(self.emulator.tasks.values()))

    def tasks_of(self, job_id: str) -> list[Any]:
        return [task for task in list(self.emulator.tasks.values()) if task.state == job_id]

    def callback_answers(self) -> list[int | None]:
        return [r.http_status for r in list(self.emulator.callbacks) if r.outcome != "dropped"]

    # the DLQ and the events

    def dlq_keys(self) -> list[str]:
        """The S3 keys of every message in the DLQ (read, not deleted)."""
        keys: list[str] = []
        seen: set[str] = set()
        for _ in range(200):
            answer = self.sqs.receive_message(
                QueueUrl=self.info["dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=120, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                if message["MessageId"] in seen:
                    continue
                seen.add(message["MessageId"])
                try:
                    records = json.loads(message["Body"]).get("Records", [])
                    keys.extend(decode_event_key(r["s3"]["object"]["key"]) for r in records)
                except (ValueError, KeyError, AttributeError, TypeError):
                    keys.append(f"<unreadable DLQ message {message['MessageId']}>")
        return keys

    def _capture_events(self) -> None:
        events = self.client("events")
        self.events_queue = self.sqs.create_queue(QueueName=f"chaos-events-{self.name}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.events_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = self.info["event_bus"]
        events.put_rule(Name="chaos-capture", EventBusName=bus, EventPattern=json.dumps({"source": ["swapdrop"]}))
        events.put_targets(Rule="chaos-capture", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        self._events: Counter = Counter()

    def events_per_job(self) -> Counter:
        """Every event captured so far, counted per jobId (drains the capture queue)."""
        for _ in range(1000):
            answer = self.sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    detail = json.loads(message["Body"]).get("detail", {})
                    self._events[str(detail.get("jobId"))] += 1
                except (ValueError, AttributeError):
                    self._events["<unreadable>"] += 1
            self.sqs.delete_message_batch(
                QueueUrl=self.events_queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return Counter(self._events)

    # the workers

    def worker_pids(self, function: str | None = None) -> list[int]:
        assert self.running
        pids: list[int] = []
        for name, local in self.running.functions.items():
            if function and name != function:
                continue
            if hasattr(local, "worker_pids"):
                pids.extend(local.worker_pids())
            else:  # today's ProcessPoolExecutor
                pool = getattr(local, "_pool", None)
                pids.extend(list(getattr(pool, "_processes", None) or {}))
        return [int(pid) for pid in pids]

    def sample_rss(self, function: str = "SubmitFunction") -> None:
        for pid in self.worker_pids(function):
            peak = vm_hwm_kib(pid)
            if peak is not None:
                self.rss_peak_kib[pid] = max(peak, self.rss_peak_kib.get(pid, 0))

    def memory_limit_mib(self, function: str) -> int:
        assert self.running
        return self.running.functions[function].spec.memory

    # secrets

    def callback_secret(self) -> str:
        return self.client("secretsmanager").get_secret_value(SecretId=self.running.stack.callback_token_secret_id)[
            "SecretString"
        ]

    def token(self, job_id: str, secret: str | None = None) -> str:
        return token_for(secret or self.callback_secret(), job_id)

    def callback_url(self, job_id: str, token: str | None) -> str:
        from urllib.parse import quote

        base = f"{self.info['callback_base_url']}/{quote(job_id, safe='')}"
        return f"{base}?token={token}" if token is not None else base

    def secrets_in_play(self) -> dict[str, list[str]]:
        """What must never reach a log: the API key and every job's callback token."""
        secret = self.callback_secret()
        return {"api key": [self.api_key], "callback token": [token_for(secret, i["jobId"]) for i in self.items()]}


def _reset_moto() -> None:
    """moto keeps its backends per process, whichever server serves them: each scenario's
    stack starts from nothing (and leaves nothing for the next stack to trip over)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def settled(item: dict[str, Any]) -> bool:
    if item.get("status") not in TERMINAL:
        return False
    if item.get("eventPending"):
        return False
    return not (item.get("status") == "SUCCESS" and not item.get("resultKey") and not item.get("resultCopyError"))


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def history_of(item: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The job's transition history ({from, to, at, via} entries), whatever it is called."""
    for name in ("history", "transitions", "statusHistory"):
        value = item.get(name)
        if isinstance(value, list) and all(isinstance(e, dict) for e in value):
            return value
    return None


def backwards(statuses: list[str]) -> str | None:
    """The first backwards move in a sequence of statuses, if any."""
    for before, after in itertools.pairwise(statuses):
        if RANK.get(after, -1) < RANK.get(before, -1) or (before in TERMINAL and after != before):
            return f"{before} -> {after}"
    return None


def summarise(figures: Figures, stack: ChaosStack, keys: list[str], *, exact_events: bool = True) -> None:
    """The figures every scenario reports, and the invariants every scenario shares:
    each upload has exactly one job, and each terminal job has its "finished" event."""
    by_key = stack.jobs_by_key()
    figures.uploads = len(keys)
    figures.submit_requests = sum(stack.submit_requests_per_job().values())
    figures.submissions = len(stack.emulator.tasks)
    wanted = set(keys)
    items = [item for key in keys for item in by_key.get(key, [])]
    figures.statuses = Counter(item["status"] for item in items)
    figures.dlq = len(stack.dlq_keys())
    events = stack.events_per_job()
    mine = {item["jobId"] for item in items}
    figures.events_total = sum(n for job, n in events.items() if job in mine)
    figures.events_max_per_job = max((events[job] for job in mine), default=0)
    for answer in stack.callback_answers():
        figures.count_answer(answer)
    missing = [k for k in keys if k not in by_key]
    figures.check(not missing, f"{len(missing)} of {len(keys)} uploads have no job (e.g. {_show(missing[:3])})")
    doubled = [k for k in wanted if len(by_key.get(k, [])) > 1]
    figures.check(not doubled, f"{len(doubled)} uploads have more than one job (e.g. {_show(doubled[:3])})")
    open_jobs = [i for i in items if i["status"] not in TERMINAL]
    figures.check(
        not open_jobs,
        f"{len(open_jobs)} jobs not terminal at the deadline: "
        + ", ".join(f"{s}={n}" for s, n in Counter(i["status"] for i in open_jobs).items()),
    )
    unsettled = [i for i in items if i["status"] in TERMINAL and not settled(i)]
    figures.check(
        not unsettled,
        f"{len(unsettled)} terminal jobs still have work left at the deadline "
        f"({sum(bool(i.get('eventPending')) for i in unsettled)} with their event unpublished)",
    )
    terminal = [i for i in items if i["status"] in TERMINAL and not i.get("eventPending")]
    no_event = [i["jobId"] for i in terminal if events[i["jobId"]] == 0]
    figures.check(not no_event, f"{len(no_event)} finished jobs have no 'Swap Job Finished' event")
    if exact_events:
        extra = {job: events[job] for job in mine if events[job] > 1}
        figures.check(
            not extra,
            f"{len(extra)} jobs have more than one 'Swap Job Finished' event "
            f"({sum(extra.values())} events for {len(extra)} jobs)",
        )


def _show(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys)


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: round(time.monotonic() - start, 1)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    json.dump(data, buffer, indent=2, default=str)
    path.write_text(buffer.getvalue() + "\n", encoding="utf-8")
