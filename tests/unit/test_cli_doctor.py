"""`swapdrop doctor`'s checks on fakes: each ✓ and each ✗ a check claims, with its fix; AccessDenied
and hung checks become ✗ lines, never a crash; the key is never shown."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from swapdrop_cli import checks
from swapdrop_cli.checks import (
    API_KEY_PLACEHOLDER,
    CheckResult,
    Doctor,
    Verdict,
    check_alarms,
    check_api_key,
    check_callbacks,
    check_health,
    check_notification,
    check_queues,
    check_reconciler,
    check_swap_api,
    run_checks,
    run_one,
    schedule_seconds,
)
from swapdrop_cli.output import Output

KEY = "sk-live-0123456789abcdef"
SUBMIT_ARN = "arn:aws:sqs:us-east-1:123456789012:swapdrop-SubmitQueue"
NOW = 1_800_000_000.0
OUTPUTS = {
    "ApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:swapdrop-key",
    "UpstreamBaseUrl": "https://swap.example.test",
    "UpstreamAuthStyle": "bearer",
    "CallbackBaseUrl": "https://cb.example.test/callbacks",
    "ApiUrl": "https://api.example.test",
    "BucketName": "swapdrop-media",
    "SubmitQueueUrl": "https://sqs/submit",
    "SubmitDeadLetterQueueUrl": "https://sqs/submit-dlq",
    "WebhookQueueUrl": "https://sqs/webhook",
    "WebhookDeadLetterQueueUrl": "https://sqs/webhook-dlq",
    "ReconcileFunctionLogGroupName": "/aws/lambda/swapdrop-Reconcile",
    "ReconcileSchedule": "rate(1 minute)",
    "AlarmNamePrefix": "swapdrop-",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:swapdrop-alarms",
}


def denied(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, operation)


class FakeSecrets:
    def __init__(self, value: Any = KEY, error: Exception | None = None) -> None:
        self.value, self.error, self.calls = value, error, 0

    def get_secret_value(self, SecretId: str) -> dict:
        self.calls += 1
        if self.error:
            raise self.error
        return {"SecretString": self.value}


class FakeSqs:
    def __init__(self, depths: dict[str, list[tuple[int, int]]] | None = None) -> None:
        self.depths = depths or {}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict:
        if AttributeNames == ["QueueArn"]:
            return {"Attributes": {"QueueArn": SUBMIT_ARN if QueueUrl == OUTPUTS["SubmitQueueUrl"] else "arn:other"}}
        samples = self.depths.get(QueueUrl, [(0, 0)])
        visible, flight = samples.pop(0) if len(samples) > 1 else samples[0]
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(visible),
                "ApproximateNumberOfMessagesNotVisible": str(flight),
            }
        }


def queue_config(prefix: str, arn: str = SUBMIT_ARN) -> dict:
    return {
        "QueueArn": arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": prefix}]}},
    }


class FakeS3:
    def __init__(self, configs: list[dict] | None = None) -> None:
        self.configs = [queue_config("inbox/"), queue_config("uploads/")] if configs is None else configs

    def get_bucket_notification_configuration(self, Bucket: str) -> dict:
        return {"QueueConfigurations": self.configs}


class FakeLogs:
    def __init__(self, last_ms: int | None = int((NOW - 30) * 1000), error: Exception | None = None) -> None:
        self.last_ms, self.error, self.asked = last_ms, error, {}

    def describe_log_streams(self, **kwargs: Any) -> dict:
        self.asked = kwargs
        if self.error:
            raise self.error
        return {
            "logStreams": [] if self.last_ms is None else [{"logStreamName": "s", "lastEventTimestamp": self.last_ms}]
        }


class FakeCloudWatch:
    def __init__(self, alarms: list[dict] | None = None) -> None:
        self.alarms = alarms if alarms is not None else [{"AlarmName": "swapdrop-dlq", "StateValue": "OK"}]
        self.prefixes: list[str] = []

    def describe_alarms(self, AlarmNamePrefix: str, NextToken: str | None = None) -> dict:
        self.prefixes.append(AlarmNamePrefix)
        if NextToken is None and len(self.alarms) > 1:  # two pages: the pagination is followed
            return {"MetricAlarms": self.alarms[:1], "NextToken": "page-2"}
        return {"MetricAlarms": self.alarms[1:] if NextToken else self.alarms}


@dataclass
class FakeTarget:
    outputs: dict[str, str] = field(default_factory=lambda: dict(OUTPUTS))
    clients: dict[str, Any] = field(default_factory=dict)
    kind: str = "stack"
    stack_name: str = "swapdrop"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    description: str = "stack 'swapdrop'"

    def client(self, service: str) -> Any:
        return self.clients[service]


@dataclass
class Answer:
    status_code: int
    body: Any = None

    def json(self) -> Any:
        if self.body is None:
            raise ValueError("no JSON")
        return self.body


class FakeHttp:
    """requests.Session's get/post: scripted answers or exceptions per URL prefix; records requests."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict]] = []

    def _answer(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.requests.append((method, url, kwargs))
        for prefix, answer in self.answers.items():
            if url.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise requests.ConnectionError("no route")

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self._answer("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Answer:
        return self._answer("POST", url, **kwargs)


def healthy_http() -> FakeHttp:
    return FakeHttp(
        {
            OUTPUTS["UpstreamBaseUrl"]: Answer(404),
            OUTPUTS["CallbackBaseUrl"]: Answer(403, {"message": "invalid or missing token"}),
            OUTPUTS["ApiUrl"] + "/health": Answer(200, {"version": "1.0.0", "apiKeySet": True}),
        }
    )


def make_doctor(target: FakeTarget | None = None, http: FakeHttp | None = None, **clients: Any) -> Doctor:
    target = target or FakeTarget()
    defaults = {
        "secretsmanager": FakeSecrets(),
        "sqs": FakeSqs(),
        "s3": FakeS3(),
        "logs": FakeLogs(),
        "cloudwatch": FakeCloudWatch(),
    }
    target.clients = {**defaults, **clients}
    return Doctor(target, http=http or healthy_http(), drain_seconds=2, clock=lambda: NOW, sleep=lambda _s: None)


def run(check: Any, doctor: Doctor) -> CheckResult:
    return run_one(check, doctor)


# --- the whole doctor ---------------------------------------------------------------------


def test_a_healthy_stack_passes_every_check_and_never_shows_the_key() -> None:
    results = run_checks(make_doctor())
    assert [r.ok for r in results] == [True] * len(checks.CHECKS), results
    assert [r.name for r in results] == [checks.CHECK_NAMES[c] for c in checks.CHECKS]
    assert KEY not in json.dumps([r.as_json() for r in results])


def test_the_key_is_read_once_for_every_check_that_needs_it() -> None:
    secrets = FakeSecrets()
    doctor = make_doctor(secretsmanager=secrets)
    run_checks(doctor)
    assert secrets.calls == 1


def test_a_check_that_hangs_is_a_cross_after_the_timeout_and_the_others_still_report() -> None:
    release = threading.Event()

    def hangs(_doctor: Doctor) -> Verdict:
        release.wait(30)
        return Verdict(True, "late")

    try:
        results = run_checks(make_doctor(), checks=[hangs, check_api_key], timeout=0.2)
    finally:
        release.set()
    assert results[0].ok is False and "did not finish within 0.2 s" in results[0].detail
    assert results[1].ok is True


def test_doctor_lines_and_json_objects() -> None:
    stdout = io.StringIO()
    output = Output(json_mode=False, stdout=stdout, stderr=io.StringIO())
    result = run(check_api_key, make_doctor(secretsmanager=FakeSecrets(API_KEY_PLACEHOLDER)))
    output.check(result.ok, result.name, result.detail, result.fix)
    text = stdout.getvalue()
    assert text.startswith("✗ API key secret is set: the secret still holds the placeholder\n")
    assert "    fix: aws --region us-east-1 secretsmanager put-secret-value --secret-id arn:" in text
    assert set(result.as_json()) == {"name", "ok", "detail", "fix"}


# --- API key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok", "detail"),
    [
        (KEY, True, "set (not the placeholder)"),
        (API_KEY_PLACEHOLDER, False, "the secret still holds the placeholder"),
        (f"  {API_KEY_PLACEHOLDER}\n", False, "the secret still holds the placeholder"),
        ("", False, "the secret is empty"),
        (None, False, "the secret is empty"),
    ],
)
def test_api_key(value: Any, ok: bool, detail: str) -> None:
    result = run(check_api_key, make_doctor(secretsmanager=FakeSecrets(value)))
    assert (result.ok, result.detail) == (ok, detail)
    assert ok or "put-secret-value --secret-id " + OUTPUTS["ApiKeySecretArn"] in (result.fix or "")


def test_api_key_fix_reaches_a_local_stack_through_its_endpoint() -> None:
    target = FakeTarget(kind="local", endpoint_url="http://127.0.0.1:5000")
    result = run(check_api_key, make_doctor(target, secretsmanager=FakeSecrets(API_KEY_PLACEHOLDER)))
    assert (result.fix or "").startswith("aws --endpoint-url http://127.0.0.1:5000 --region us-east-1 secretsmanager")


def test_access_denied_names_the_missing_permission() -> None:
    result = run(check_api_key, make_doctor(secretsmanager=FakeSecrets(error=denied("GetSecretValue"))))
    assert result.ok is False
    assert result.detail == "cannot check: access denied for secretsmanager:GetSecretValue"
    assert "grant secretsmanager:GetSecretValue" in (result.fix or "")


def test_access_denied_through_botocore_is_named_too() -> None:
    """The real client's error (Stubber), not a hand-made one: operation_name is what IAM calls it."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_bucket_notification_configuration", service_error_code="AccessDenied", http_status_code=403
        )
        result = run(check_notification, make_doctor(s3=client))
    assert result.detail == "cannot check: access denied for s3:GetBucketNotification"


def test_a_missing_output_is_a_cross_that_says_redeploy() -> None:
    target = FakeTarget(outputs={k: v for k, v in OUTPUTS.items() if k != "UpstreamBaseUrl"})
    result = run(check_swap_api, make_doctor(target))
    assert result.ok is False and result.detail == "the stack has no UpstreamBaseUrl output"
    assert "sam deploy" in (result.fix or "")


# --- swap API -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 404, 400])
def test_swap_api_answering_anything_but_401_403_5xx_is_a_tick(status: int) -> None:
    http = healthy_http()
    http.answers[OUTPUTS["UpstreamBaseUrl"]] = Answer(status)
    result = run(check_swap_api, make_doctor(http=http))
    assert result.ok is True, result
    method, url, kwargs = http.requests[0]
    assert method == "GET" and url.startswith("https://swap.example.test/mj/task/swapdrop-doctor-")
    assert url.endswith("/fetch")
    assert kwargs["headers"] == {"Authorization": f"Bearer {KEY}"}
    assert kwargs["timeout"] == checks.HTTP_TIMEOUT
    assert KEY not in result.detail


def test_swap_api_key_goes_in_the_header_the_auth_style_names() -> None:
    http = healthy_http()
    target = FakeTarget(outputs={**OUTPUTS, "UpstreamAuthStyle": "mj-api-secret"})
    run(check_swap_api, make_doctor(target, http=http))
    assert http.requests[0][2]["headers"] == {"mj-api-secret": KEY}


@pytest.mark.parametrize("status", [401, 403])
def test_swap_api_refusing_the_key(status: int) -> None:
    http = healthy_http()
    http.answers[OUTPUTS["UpstreamBaseUrl"]] = Answer(status)
    result = run(check_swap_api, make_doctor(http=http))
    assert result.ok is False and f"refused the key: HTTP {status}" in result.detail
    assert "put-secret-value" in (result.fix or "")


def test_swap_api_refusing_the_placeholder_says_so() -> None:
    http = healthy_http()
    http.answers[OUTPUTS["UpstreamBaseUrl"]] = Answer(401)
    result = run(check_swap_api, make_doctor(http=http, secretsmanager=FakeSecrets(API_KEY_PLACEHOLDER)))
    assert result.detail.endswith("(the secret holds the placeholder)")


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (requests.ConnectionError("refused"), "is unreachable (connection refused or no route)"),
        (requests.ReadTimeout("slow"), "did not answer within 5 s"),
        (Answer(502), "is failing: HTTP 502"),
    ],
)
def test_swap_api_unreachable(answer: Any, detail: str) -> None:
    http = healthy_http()
    http.answers[OUTPUTS["UpstreamBaseUrl"]] = answer
    result = run(check_swap_api, make_doctor(http=http))
    assert result.ok is False and detail in result.detail
    assert "UpstreamBaseUrl" in (result.fix or "")
    local = run(check_swap_api, make_doctor(FakeTarget(kind="local"), http=http))
    assert "restart swapdrop local" in (local.fix or "")


# --- callbacks and health -------------------------------------------------------------------


def test_callback_posts_a_bogus_token_for_an_unknown_job() -> None:
    http = healthy_http()
    result = run(check_callbacks, make_doctor(http=http))
    assert result.ok is True
    method, url, kwargs = http.requests[0]
    assert method == "POST" and url.startswith(OUTPUTS["CallbackBaseUrl"] + "/")
    assert len(url.rsplit("/", 1)[1]) == 32
    assert kwargs["params"] == {"token": "swapdrop-doctor"}


@pytest.mark.parametrize(
    "answer",
    [
        Answer(404, {"message": "Not Found"}),  # API Gateway: no such route
        Answer(403, {"message": "Forbidden"}),  # API Gateway: the route wants IAM
        Answer(403),  # not JSON: not our function
        Answer(200, {"message": "ok"}),
        Answer(500, {"message": "Internal Server Error"}),
        requests.ConnectionError("refused"),
    ],
)
def test_callback_answers_that_are_not_our_function(answer: Any) -> None:
    http = healthy_http()
    http.answers[OUTPUTS["CallbackBaseUrl"]] = answer
    result = run(check_callbacks, make_doctor(http=http))
    assert result.ok is False
    assert "swapdrop logs callback" in (result.fix or "")


@pytest.mark.parametrize(
    "answer", [Answer(503, {"message": "Service Unavailable"}), Answer(200, ["x"]), requests.ConnectionError("no")]
)
def test_health_failures(answer: Any) -> None:
    http = healthy_http()
    http.answers[OUTPUTS["ApiUrl"] + "/health"] = answer
    assert run(check_health, make_doctor(http=http)).ok is False


# --- notification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configs", "missing"),
    [
        ([], "inbox/ and uploads/"),
        ([queue_config("inbox/")], "uploads/"),
        ([queue_config("inbox/"), queue_config("uploads/", arn="arn:other")], "uploads/"),
        ([queue_config("results/"), queue_config("uploads/")], "inbox/"),
    ],
)
def test_notification_missing(configs: list[dict], missing: str) -> None:
    result = run(check_notification, make_doctor(s3=FakeS3(configs)))
    assert result.ok is False
    assert result.detail.startswith(f"new objects under {missing} do not reach the submit queue")
    assert "sam deploy" in (result.fix or "")


# --- queues ---------------------------------------------------------------------------------


def test_queues_dead_letters_are_a_cross_with_the_dlq_command() -> None:
    sqs = FakeSqs({OUTPUTS["WebhookDeadLetterQueueUrl"]: [(2, 0)]})
    result = run(check_queues, make_doctor(sqs=sqs))
    assert result.ok is False and result.detail == "dead-lettered messages (Webhook DLQ: 2)"
    assert result.fix == "swapdrop dlq (see why), fix it, then swapdrop dlq --redrive"


def test_queues_in_flight_only_is_fine() -> None:
    result = run(check_queues, make_doctor(sqs=FakeSqs({OUTPUTS["SubmitQueueUrl"]: [(0, 3)]})))
    assert (result.ok, result.detail) == (True, "no waiting messages (3 being processed)")


def test_queues_draining_is_fine_and_stuck_is_not() -> None:
    draining = FakeSqs({OUTPUTS["SubmitQueueUrl"]: [(10, 2), (4, 2)]})
    result = run(check_queues, make_doctor(sqs=draining))
    assert (result.ok, result.detail) == (True, "draining (Submit: 10 waiting)")
    stuck = FakeSqs({OUTPUTS["SubmitQueueUrl"]: [(10, 0), (12, 0)]})
    result = run(check_queues, make_doctor(sqs=stuck))
    assert result.ok is False and result.detail == "not draining over 2 s (Submit: 10 → 12)"
    assert "swapdrop logs submit" in (result.fix or "")


def test_queues_sleep_only_when_something_waits() -> None:
    slept: list[float] = []
    doctor = make_doctor()
    doctor.sleep = slept.append
    run(check_queues, doctor)
    assert slept == []


# --- reconciler -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_schedule_seconds(expression: str, seconds: int) -> None:
    assert schedule_seconds(expression) == seconds


def test_schedule_seconds_of_cron_is_unknown() -> None:
    assert schedule_seconds("cron(0 * * * ? *)") is None


def test_reconciler_recent_late_and_never() -> None:
    logs = FakeLogs(last_ms=int((NOW - 100) * 1000))
    result = run(check_reconciler, make_doctor(logs=logs))
    assert (result.ok, result.detail) == (True, "last ran 100 s ago (rate(1 minute))")
    assert logs.asked == {
        "logGroupName": OUTPUTS["ReconcileFunctionLogGroupName"],
        "orderBy": "LastEventTime",
        "descending": True,
        "limit": 1,
    }
    late = run(check_reconciler, make_doctor(logs=FakeLogs(last_ms=int((NOW - 181) * 1000))))
    assert late.ok is False and late.detail == "last ran 181 s ago (schedule rate(1 minute), allowed 180 s)"
    never = run(check_reconciler, make_doctor(logs=FakeLogs(last_ms=None)))
    assert (never.ok, never.detail) == (False, "it has not logged anything yet")
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "x"}}, "DescribeLogStreams")
    gone = run(check_reconciler, make_doctor(logs=FakeLogs(error=missing)))
    assert gone.ok is False and "it never ran" in gone.detail


# --- alarms ---------------------------------------------------------------------------------


def test_alarms_in_alarm_give_their_descriptions_as_the_fix() -> None:
    cloudwatch = FakeCloudWatch(
        [
            {"AlarmName": "swapdrop-submit-dlq", "StateValue": "ALARM", "AlarmDescription": "Run swapdrop dlq."},
            {"AlarmName": "swapdrop-errors", "StateValue": "INSUFFICIENT_DATA"},
        ]
    )
    result = run(check_alarms, make_doctor(cloudwatch=cloudwatch))
    assert result.ok is False
    assert result.detail == "1 of 2 in ALARM: swapdrop-submit-dlq"
    assert result.fix == "swapdrop-submit-dlq: Run swapdrop dlq."
    assert cloudwatch.prefixes == ["swapdrop-", "swapdrop-"]


def test_alarms_without_data_are_fine() -> None:
    cloudwatch = FakeCloudWatch([{"AlarmName": "a", "StateValue": "INSUFFICIENT_DATA"}])
    result = run(check_alarms, make_doctor(cloudwatch=cloudwatch))
    assert (result.ok, result.detail) == (True, "1 alarms, none in ALARM (1 with no data yet)")


def test_alarms_off_or_missing() -> None:
    target = FakeTarget(outputs={k: v for k, v in OUTPUTS.items() if k != "AlarmTopicArn"})
    off = run(check_alarms, make_doctor(target, cloudwatch=FakeCloudWatch([])))
    assert (off.ok, off.detail) == (True, "alarms are off (EnableAlarms=false)")
    missing = run(check_alarms, make_doctor(cloudwatch=FakeCloudWatch([])))
    assert missing.ok is False and missing.detail == "no alarms named swapdrop-*"


# --- the command ----------------------------------------------------------------------------


def run_doctor(argv: list[str], results: list[CheckResult], monkeypatch: pytest.MonkeyPatch, json_mode: bool = False):
    from swapdrop_cli.app import build_parser
    from swapdrop_cli.commands import doctor as command

    seen: dict[str, Any] = {}

    def fake_run_checks(doctor: Doctor, timeout: float) -> list[CheckResult]:
        seen.update(drain=doctor.drain_seconds, timeout=timeout)
        return results

    monkeypatch.setattr(command, "run_checks", fake_run_checks)
    args = build_parser().parse_args(["doctor", *argv])
    stdout, stderr = io.StringIO(), io.StringIO()
    ctx = type("Ctx", (), {})()
    ctx.target = FakeTarget()
    ctx.output = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return args.func(args, ctx), stdout.getvalue(), stderr.getvalue(), seen


def test_exit_1_when_any_check_fails_and_0_when_none(monkeypatch: pytest.MonkeyPatch) -> None:
    good = CheckResult("a", True, "fine")
    bad = CheckResult("b", False, "broken", "do this")
    code, stdout, stderr, seen = run_doctor(["--drain-seconds", "7"], [good, bad], monkeypatch)
    assert code == 1
    assert stdout == "✓ a: fine\n✗ b: broken\n    fix: do this\n"
    assert "1 of 2 checks failed" in stderr
    assert seen == {"drain": 7.0, "timeout": 30.0}
    code, stdout, stderr, _ = run_doctor([], [good], monkeypatch, json_mode=True)
    assert code == 0 and [json.loads(line) for line in stdout.splitlines()] == [
        {"name": "a", "ok": True, "detail": "fine", "fix": None}
    ]
    assert stderr == ""


@pytest.mark.parametrize("value", ["0", "-1", "601", "soon"])
def test_bad_drain_seconds_are_usage_errors(value: str) -> None:
    from swapdrop_cli.app import main

    assert main(["doctor", "--drain-seconds", value, "--local", "/nonexistent/local.json"]) == 2


def test_the_help_names_every_check() -> None:
    from swapdrop_cli.commands.doctor import EXAMPLES

    assert all(f"  {name}  " in EXAMPLES for name in checks.CHECK_NAMES.values())
