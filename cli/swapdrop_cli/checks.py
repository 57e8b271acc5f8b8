"""`swapdrop doctor`'s checks: each looks at one thing a working stack needs and says how to fix it.

A check is a function of a `Doctor` (the target, an HTTP session, the clock) that returns a
`Verdict`. The checks only read, except two harmless requests: fetching an unknown task from
the swap API and posting a callback with a bogus token for an unknown job (both refused by design).
The API key is read to be compared with the placeholder and sent to the swap API; it is never shown.
The key secret may hold an upstream pool (a JSON object naming several members, README "Upstream pool"):
the doctor then checks every member's key and swap API, parsing the JSON itself (the CLI does not import
the Lambda layer's package).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import requests
from botocore.exceptions import BotoCoreError, ClientError

API_KEY_PLACEHOLDER = "REPLACE_WITH_THE_SWAP_API_KEY"
"""What the template's generated secret holds until someone stores the real key (swapdrop.wiring)."""
FETCH_PATH = "/mj/task/{task_id}/fetch"
HTTP_TIMEOUT = (3.05, 5.0)
"""(connect, read) seconds for the doctor's own HTTP requests: a healthy endpoint answers far sooner."""
DEFAULT_DRAIN_SECONDS = 5.0
RECONCILE_PERIODS = 3
"""The reconciler is late when its last log line is older than this many schedule periods."""
CRON_PERIOD_SECONDS = 3600
"""A cron(...) schedule's period is not worked out: an hour is assumed (3 h allowed)."""
GATEWAY_MESSAGES = {"Not Found", "Forbidden", "Unauthorized", "Internal Server Error", "Service Unavailable"}
"""API Gateway's own answers (no route, IAM refused): CallbackFunction says 'invalid or missing token'."""
DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "AWS.SimpleQueueService.AccessDenied",
}
CREDENTIAL_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"}
IAM_ACTIONS = {
    "GetSecretValue": "secretsmanager:GetSecretValue",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "DescribeLogStreams": "logs:DescribeLogStreams",
    "DescribeAlarms": "cloudwatch:DescribeAlarms",
}
POOL_MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_POOL_MEMBERS = 50
AUTH_STYLES = ("bearer", "mj-api-secret")
DEFAULT_MEMBER = "default"
"""The one member a plain key stands for."""
POOL_FIX = "fix the pool JSON (README: Upstream pool) and store it again with secretsmanager put-secret-value"
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Verdict:
    """What a check found: ✓/✗, what it saw, and for a ✗ what to run or change."""

    ok: bool
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UpstreamMember:
    """One swap API member as the doctor reaches it: the pool JSON's fields it needs, defaults applied."""

    name: str
    base_url: str | None
    """None: the UpstreamBaseUrl output (read only when some member needs it)."""
    auth_style: str | None
    """None: the UpstreamAuthStyle output."""
    api_key: str = field(repr=False)


def upstream_members(secret: str) -> list[UpstreamMember]:
    """The key secret's members: a plain key is one member (`default`); a JSON object is a pool.

    Minimal on purpose (the layer's parse_pool is the authority): enough to reach every member, and a
    ✗ naming the field for a pool the functions would refuse. Messages never include a key."""
    if not secret.startswith("{"):
        return [UpstreamMember(DEFAULT_MEMBER, None, None, secret)]
    try:
        pool = json.loads(secret)
    except ValueError as error:
        where = f"line {getattr(error, 'lineno', '?')} column {getattr(error, 'colno', '?')}"
        problem = f"{getattr(error, 'msg', 'unreadable')} at {where}"  # never the text itself: it holds keys
        raise CheckFailed(
            f"the secret starts with {{ (an upstream pool) but is not valid JSON: {problem}", POOL_FIX
        ) from None
    default_key = pool.get("apiKey")
    if default_key is not None and not isinstance(default_key, str):
        raise _bad_pool("apiKey must be a string")
    members = pool.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_POOL_MEMBERS:
        raise _bad_pool(f"members must be a list of 1 to {MAX_POOL_MEMBERS} members")
    found: list[UpstreamMember] = []
    for index, member in enumerate(members):
        where = f"members[{index}]"
        if not isinstance(member, dict):
            raise _bad_pool(f"{where} is not an object")
        name = member.get("name")
        if not isinstance(name, str) or not POOL_MEMBER_NAME.match(name):
            raise _bad_pool(f"{where}.name must match {POOL_MEMBER_NAME.pattern}")
        if any(other.name == name for other in found):
            raise _bad_pool(f"{where}.name {name!r} is used twice")
        base_url = member.get("baseUrl")
        if base_url is not None and not (isinstance(base_url, str) and re.match(r"^https?://[^\s/]+", base_url)):
            raise _bad_pool(f"{where}.baseUrl ({name}) must be an http(s) URL")
        style = member.get("authStyle")
        if style is not None and style not in AUTH_STYLES:
            raise _bad_pool(f"{where}.authStyle ({name}) must be one of {', '.join(AUTH_STYLES)}")
        key = member.get("apiKey", default_key)
        if not isinstance(key, str) or not key.strip():
            raise _bad_pool(f"{where}.apiKey ({name}) is missing and the pool has no top-level apiKey")
        found.append(UpstreamMember(name, base_url.rstrip("/") if base_url else None, style, key.strip()))
    return found


def _bad_pool(problem: str) -> CheckFailed:
    return CheckFailed(f"the secret's upstream pool: {problem}", POOL_FIX)


Check = Callable[["Doctor"], Verdict]
CHECKS: list[Check] = []
CHECK_NAMES: dict[Check, str] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register a check under the name its ✓/✗ line shows, in the order doctor prints them."""

    def register(function: Check) -> Check:
        CHECKS.append(function)
        CHECK_NAMES[function] = name
        return function

    return register


class StackTarget(Protocol):
    """What the checks need of `swapdrop_cli.target.Target`."""

    kind: str
    stack_name: str
    region: str
    outputs: dict[str, str]
    endpoint_url: str | None

    def client(self, service: str) -> Any: ...


class CheckFailed(Exception):
    """A check's ✗ raised from deep inside it: the detail and the fix."""

    def __init__(self, detail: str, fix: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class Doctor:
    """The checks' shared state: the target, an HTTP session, the API key (read once), the clock."""

    def __init__(
        self,
        target: StackTarget,
        http: Any = None,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.http = http if http is not None else requests.Session()
        self.drain_seconds = drain_seconds
        self.clock = clock
        self.sleep = sleep
        self._key_lock = threading.Lock()
        self._key: tuple[str | None, CheckFailed | None] | None = None

    # --- helpers the checks share ------------------------------------------------------------

    def output(self, key: str) -> str:
        value = self.target.outputs.get(key)
        if not value:
            raise CheckFailed(
                f"the stack has no {key} output",
                f"deploy the current template: sam build && sam deploy (stack {self.target.stack_name})",
            )
        return value

    def aws(self) -> str:
        """The `aws` command line prefix that reaches this stack (for fixes)."""
        endpoint = f" --endpoint-url {self.target.endpoint_url}" if self.target.endpoint_url else ""
        return f"aws{endpoint} --region {self.target.region}"

    def api_key(self) -> str:
        """The swap API key as stored (stripped), read once for every check; CheckFailed when unreadable."""
        with self._key_lock:
            if self._key is None:
                try:
                    self._key = (self._read_key(), None)
                except CheckFailed as failed:
                    self._key = (None, failed)
                except ClientError as error:
                    self._key = (None, aws_failure(error))
            key, failed = self._key
        if failed is not None:
            raise failed
        assert key is not None
        return key

    def members(self) -> list[UpstreamMember]:
        """The swap API members the key secret names (one for a plain key); CheckFailed for a bad pool."""
        return upstream_members(self.api_key())

    def _read_key(self) -> str:
        arn = self.output("ApiKeySecretArn")
        value = self.target.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString")
        return value.strip() if isinstance(value, str) else ""

    def set_key_fix(self) -> str:
        arn = self.target.outputs.get("ApiKeySecretArn", "<ApiKeySecretArn>")
        return f'{self.aws()} secretsmanager put-secret-value --secret-id {arn} --secret-string "$SWAP_API_KEY"'

    def set_pool_fix(self, members: str) -> str:
        """For a pool: store the whole JSON again (a plain key would replace the pool with one member)."""
        arn = self.target.outputs.get("ApiKeySecretArn", "<ApiKeySecretArn>")
        return (
            f"{self.aws()} secretsmanager put-secret-value --secret-id {arn} --secret-string file://pool.json "
            f"(the pool JSON with a working key for {members})"
        )

    def queue_arn(self, url: str) -> str:
        answer = self.target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return answer["Attributes"]["QueueArn"]

    def queue_depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages: SQS's approximate counts."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(attributes.get(names[0], 0)), int(attributes.get(names[1], 0))


def aws_failure(error: ClientError) -> CheckFailed:
    """A ClientError as a ✗: a missing permission named as IAM names it, refused credentials, or the error."""
    code = error.response.get("Error", {}).get("Code", "")
    operation = getattr(error, "operation_name", "") or "the call"
    if code in DENIED_CODES:
        action = IAM_ACTIONS.get(operation, operation)
        return CheckFailed(
            f"cannot check: access denied for {action}",
            f"grant {action} on the stack's resources to the credentials you use (or use a profile that has it)",
        )
    if code in CREDENTIAL_CODES:
        return CheckFailed(
            f"cannot check: the credentials were refused ({code})",
            "refresh your AWS credentials (aws sso login / aws configure) or pass --profile",
        )
    message = error.response.get("Error", {}).get("Message", "")
    return CheckFailed(f"cannot check: {operation} failed: {code} {message}".strip())


# --- the checks ------------------------------------------------------------------------------


@check("API key secret is set")
def check_api_key(doctor: Doctor) -> Verdict:
    key = doctor.api_key()
    if not key:
        return Verdict(False, "the secret is empty", doctor.set_key_fix())
    if key == API_KEY_PLACEHOLDER:
        return Verdict(False, "the secret still holds the placeholder", doctor.set_key_fix())
    if not key.startswith("{"):
        return Verdict(True, "set (not the placeholder)")
    members = doctor.members()
    placeholders = [m.name for m in members if m.api_key == API_KEY_PLACEHOLDER]
    if placeholders:
        names = ", ".join(placeholders)
        return Verdict(False, f"the pool's key for {names} is the placeholder", doctor.set_pool_fix(names))
    names = ", ".join(m.name for m in members)
    return Verdict(True, f"an upstream pool of {len(members)} ({names}), each with a key (not the placeholder)")


@check("swap API answers and accepts the key")
def check_swap_api(doctor: Doctor) -> Verdict:
    """Every member of the pool (one for a plain key) answers and takes its key."""
    members = doctor.members()
    if len(members) == 1 and members[0].name == DEFAULT_MEMBER:
        return _check_member(doctor, members[0])
    with ThreadPoolExecutor(max_workers=min(8, len(members)), thread_name_prefix="doctor-member") as pool:
        verdicts = list(pool.map(lambda member: _check_member(doctor, member), members))
    failed = [(member, verdict) for member, verdict in zip(members, verdicts, strict=True) if not verdict.ok]
    if failed:
        detail = "; ".join(f"{member.name}: {verdict.detail}" for member, verdict in failed)
        fix = failed[0][1].fix
        refused = [member.name for member, verdict in failed if "refused the key" in verdict.detail]
        if refused:
            fix = doctor.set_pool_fix(", ".join(refused))
        return Verdict(False, f"{len(failed)} of {len(members)} pool members failed: {detail}", fix)
    names = ", ".join(member.name for member in members)
    return Verdict(True, f"all {len(members)} pool members ({names}) answered a fetch of an unknown task")


def _check_member(doctor: Doctor, member: UpstreamMember) -> Verdict:
    """Fetch a task that does not exist: any answer but 401/403 shows the API is up and takes the key."""
    base = (member.base_url or doctor.output("UpstreamBaseUrl")).rstrip("/")
    style = member.auth_style or doctor.target.outputs.get("UpstreamAuthStyle", "bearer")
    key = member.api_key
    headers = {"Authorization": f"Bearer {key}"} if style != "mj-api-secret" else {"mj-api-secret": key}
    url = base + FETCH_PATH.format(task_id=f"swapdrop-doctor-{secrets.token_hex(8)}")
    try:
        response = doctor.http.get(url, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False)
    except requests.Timeout:
        return Verdict(False, f"{base} did not answer within {HTTP_TIMEOUT[1]:g} s", _upstream_fix(doctor))
    except requests.RequestException as error:
        return Verdict(False, f"{base} is unreachable ({_why(error)})", _upstream_fix(doctor))
    status = response.status_code
    if status in (401, 403):
        placeholder = " (the secret holds the placeholder)" if key == API_KEY_PLACEHOLDER else ""
        return Verdict(False, f"{base} refused the key: HTTP {status}{placeholder}", doctor.set_key_fix())
    if status >= 500:
        return Verdict(False, f"{base} is failing: HTTP {status}", _upstream_fix(doctor))
    return Verdict(True, f"{base} answered HTTP {status} to a fetch of an unknown task ({style} auth)")


def _upstream_fix(doctor: Doctor) -> str:
    if doctor.target.kind == "local":
        return "the local stack's swap API (its emulator, or the --upstream URL) is down: restart swapdrop local"
    return (
        "check that the swap API is up and that UpstreamBaseUrl is right; to change it: "
        f"sam deploy --parameter-overrides UpstreamBaseUrl=https://… (stack {doctor.target.stack_name})"
    )


def _why(error: Exception) -> str:
    if isinstance(error, requests.ConnectionError):
        return "connection refused or no route"
    return type(error).__name__


@check("callback URL reachable from outside")
def check_callbacks(doctor: Doctor) -> Verdict:
    """POST a callback for an unknown job with a bogus token: CallbackFunction's JSON 403 proves the route."""
    base = doctor.output("CallbackBaseUrl").rstrip("/")
    url = f"{base}/{secrets.token_hex(16)}"
    fix = (
        "the swap API posts results to CallbackBaseUrl: check the HTTP API's /callbacks/{jobId} route "
        f"(sam deploy) and swapdrop logs callback --since 1h (stack {doctor.target.stack_name})"
    )
    try:
        response = doctor.http.post(
            url, params={"token": "swapdrop-doctor"}, json={}, timeout=HTTP_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as error:
        return Verdict(False, f"{base} is unreachable ({_why(error)})", fix)
    message = _json_message(response)
    if 400 <= response.status_code < 500 and message is not None and message not in GATEWAY_MESSAGES:
        return Verdict(True, f"{base} answered a bogus callback with HTTP {response.status_code}")
    shown = f"HTTP {response.status_code}" + (f" {message!r}" if message else "")
    return Verdict(False, f"{base} answered a bogus callback with {shown}, not CallbackFunction's", fix)


@check("jobs API answers (GET /health)")
def check_health(doctor: Doctor) -> Verdict:
    base = doctor.output("ApiUrl").rstrip("/")
    fix = f"swapdrop logs api --since 1h (stack {doctor.target.stack_name}); redeploy with sam deploy"
    try:
        response = doctor.http.get(f"{base}/health", timeout=HTTP_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        return Verdict(False, f"{base} is unreachable ({_why(error)})", fix)
    body = _json_object(response)
    if response.status_code != 200 or body is None or "version" not in body:
        return Verdict(False, f"GET {base}/health answered HTTP {response.status_code}", fix)
    return Verdict(True, f"version {str(body['version'])[:40]}")


def _json_object(response: Any) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _json_message(response: Any) -> str | None:
    body = _json_object(response)
    if body is None or not isinstance(body.get("message"), str):
        return None
    return body["message"][:200]


@check("bucket notification in place")
def check_notification(doctor: Doctor) -> Verdict:
    bucket = doctor.output("BucketName")
    queue_arn = doctor.queue_arn(doctor.output("SubmitQueueUrl"))
    config = doctor.target.client("s3").get_bucket_notification_configuration(Bucket=bucket)
    prefixes = {
        _prefix(entry)
        for entry in config.get("QueueConfigurations", [])
        if entry.get("QueueArn") == queue_arn
        and any(event.startswith("s3:ObjectCreated:") for event in entry["Events"])
    }
    missing = [prefix for prefix in ("inbox/", "uploads/") if prefix not in prefixes]
    if missing:
        where = " and ".join(missing)
        return Verdict(
            False,
            f"new objects under {where} do not reach the submit queue: uploads start no job",
            "redeploy so the template puts the notification back: sam deploy "
            f"(stack {doctor.target.stack_name}; a local stack: restart swapdrop local)",
        )
    return Verdict(True, f"inbox/ and uploads/ → {queue_arn.rsplit(':', 1)[-1]}")


def _prefix(entry: Mapping[str, Any]) -> str | None:
    rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    for rule in rules:
        if str(rule.get("Name", "")).lower() == "prefix":
            return rule.get("Value")
    return None


@check("queues empty or draining")
def check_queues(doctor: Doctor) -> Verdict:
    """Dead-letter queues empty; a main queue with waiting messages must shrink within `drain_seconds`."""
    queues = {key[: -len("QueueUrl")]: url for key, url in doctor.target.outputs.items() if key.endswith("QueueUrl")}
    if not queues:
        raise CheckFailed("the stack has no queue outputs", "sam build && sam deploy")
    depths = {queue: doctor.queue_depth(url) for queue, url in sorted(queues.items())}
    dead = {
        q: visible + flight for q, (visible, flight) in depths.items() if q.endswith("DeadLetter") and visible + flight
    }
    if dead:
        shown = ", ".join(f"{q.replace('DeadLetter', ' DLQ')}: {n}" for q, n in dead.items())
        return Verdict(
            False, f"dead-lettered messages ({shown})", "swapdrop dlq (see why), fix it, then swapdrop dlq --redrive"
        )
    waiting = {q: v for q, (v, _) in depths.items() if not q.endswith("DeadLetter") and v}
    if not waiting:
        busy = sum(flight for _, flight in depths.values())
        return Verdict(True, "all empty" if not busy else f"no waiting messages ({busy} being processed)")
    doctor.sleep(doctor.drain_seconds)
    stuck = {}
    for queue, before in waiting.items():
        after, _ = doctor.queue_depth(queues[queue])
        if after >= before:
            stuck[queue] = (before, after)
    if stuck:
        shown = ", ".join(f"{q}: {b} → {a}" for q, (b, a) in stuck.items())
        return Verdict(
            False,
            f"not draining over {doctor.drain_seconds:g} s ({shown})",
            "swapdrop logs submit --since 1h (are the functions failing or throttled?); "
            "run swapdrop doctor --drain-seconds 30 to watch longer",
        )
    shown = ", ".join(f"{q}: {n}" for q, n in waiting.items())
    return Verdict(True, f"draining ({shown} waiting)")


def schedule_seconds(expression: str) -> int | None:
    """rate(N unit) in seconds; None for cron(...) or anything else."""
    found = _RATE.match(expression.strip())
    if not found:
        return None
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2).rstrip("s")]


@check("reconciler ran recently")
def check_reconciler(doctor: Doctor) -> Verdict:
    group = doctor.output("ReconcileFunctionLogGroupName")
    schedule = doctor.target.outputs.get("ReconcileSchedule", "rate(1 minute)")
    period = schedule_seconds(schedule) or CRON_PERIOD_SECONDS
    allowed = RECONCILE_PERIODS * period
    fix = (
        f"check ReconcileFunction's schedule rule ({schedule}) is enabled and "
        "swapdrop logs reconcile --since 1h shows no errors"
    )
    logs = doctor.target.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=1).get(
            "logStreams", []
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return Verdict(False, f"no log group {group}: it never ran", fix)
        raise
    last = max((s.get("lastEventTimestamp") or s.get("lastIngestionTime") or 0 for s in streams), default=0)
    if not last:
        return Verdict(False, "it has not logged anything yet", fix)
    age = doctor.clock() - last / 1000
    if age > allowed:
        return Verdict(False, f"last ran {_ago(age)} ago (schedule {schedule}, allowed {_ago(allowed)})", fix)
    return Verdict(True, f"last ran {_ago(max(age, 0))} ago ({schedule})")


def _ago(seconds: float) -> str:
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


@check("alarms in OK")
def check_alarms(doctor: Doctor) -> Verdict:
    prefix = doctor.target.outputs.get("AlarmNamePrefix")
    if not prefix:
        return Verdict(False, "the stack has no AlarmNamePrefix output", "deploy the current template: sam deploy")
    alarms = list(_alarms(doctor.target.client("cloudwatch"), prefix))
    if not alarms:
        if not doctor.target.outputs.get("AlarmTopicArn"):
            return Verdict(True, "alarms are off (EnableAlarms=false)")
        return Verdict(False, f"no alarms named {prefix}*", "sam deploy (EnableAlarms=true makes them)")
    firing = [a for a in alarms if a.get("StateValue") == "ALARM"]
    if firing:
        names = ", ".join(a["AlarmName"] for a in firing)
        fixes = "; ".join(f"{a['AlarmName']}: {a.get('AlarmDescription') or 'see its metric'}" for a in firing)
        return Verdict(False, f"{len(firing)} of {len(alarms)} in ALARM: {names}", fixes)
    waiting = sum(1 for a in alarms if a.get("StateValue") == "INSUFFICIENT_DATA")
    detail = f"{len(alarms)} alarms, none in ALARM" + (f" ({waiting} with no data yet)" if waiting else "")
    return Verdict(True, detail)


def _alarms(cloudwatch: Any, prefix: str) -> Iterable[dict[str, Any]]:
    token = None
    while True:
        page = cloudwatch.describe_alarms(AlarmNamePrefix=prefix, **({"NextToken": token} if token else {}))
        yield from page.get("MetricAlarms", [])
        yield from page.get("CompositeAlarms", [])
        token = page.get("NextToken")
        if not token:
            return


SERVICES = ("secretsmanager", "s3", "sqs", "logs", "cloudwatch")


def run_one(function: Check, doctor: Doctor) -> CheckResult:
    """One check, with every failure it can meet turned into a ✗ (a doctor never crashes on a sick stack)."""
    try:
        verdict = function(doctor)
    except CheckFailed as failed:
        verdict = Verdict(False, failed.detail, failed.fix)
    except ClientError as error:
        failed = aws_failure(error)
        verdict = Verdict(False, failed.detail, failed.fix)
    except BotoCoreError as error:
        verdict = Verdict(False, f"cannot check: {error}", "is the stack's region/endpoint reachable?")
    return CheckResult(CHECK_NAMES.get(function, function.__name__), verdict.ok, verdict.detail, verdict.fix)


def run_checks(
    doctor: Doctor,
    checks: Iterable[Check] | None = None,
    timeout: float = 20.0,
) -> list[CheckResult]:
    """Every check at once, each in its own daemon thread (a hung call cannot keep the command alive);
    results in the checks' order; a check still running after `timeout` seconds is a ✗."""
    for service in SERVICES:  # boto3 sessions do not create clients safely from several threads
        try:
            doctor.target.client(service)
        except Exception:  # noqa: S112 - the check that needs it reports the problem
            continue
    checks = list(CHECKS if checks is None else checks)
    results: list[CheckResult | None] = [None] * len(checks)
    threads = []
    for index, function in enumerate(checks):

        def work(index: int = index, function: Check = function) -> None:
            results[index] = run_one(function, doctor)

        thread = threading.Thread(target=work, name=f"doctor-{function.__name__}", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        result
        if result is not None
        else CheckResult(
            CHECK_NAMES.get(function, function.__name__),
            False,
            f"did not finish within {timeout:g} s",
            "run swapdrop doctor --timeout 60, or check the network to AWS and the swap API",
        )
        for function, result in zip(checks, results, strict=True)
    ]
