"""Lazy wiring: each function's cold start imports only its own path, and every deferred path still builds.

The builders import what they build on first use (swapdrop.wiring); these tests build every one of
them with real boto3 clients (created, never called: no request is made) so that a deferred import
that is wrong fails here, not on a function's first invocation. The import checks run in a fresh
interpreter: the test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from swapdrop import wiring
from swapdrop.jobs import WEBHOOK

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "BUCKET_NAME": "swapdrop-unit",
    "JOBS_TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "bus",
    "UPSTREAM_BASE_URL": "https://swap.example.com",
    "UPSTREAM_API_KEY_SECRET_ID": "api-key",
    "CALLBACK_TOKEN_SECRET_ID": "callback-token",
    "CALLBACK_BASE_URL": "https://cb.example.com/callbacks",
    "SUBMIT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/submit",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhook",
    "WEBHOOK_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhook-dlq",
    "WEBHOOK_SECRET_ID": "webhook-secret",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield
    wiring.reset()


@pytest.mark.parametrize(
    ("builder", "built"),
    [
        ("submitter", "Submitter"),
        ("submit_queue", "SubmitQueue"),
        ("callback_receiver", "CallbackReceiver"),
        ("reconciler", "Reconciler"),
        ("api_service", "JobsService"),
        ("api_idempotency", "IdempotentPosts"),
        ("swap_requests", "SwapRequests"),
        ("webhook_deliverer", "WebhookDeliverer"),
        ("webhook_queue", "WebhookQueue"),
        ("_stepfunctions", "SFN"),
    ],
)
def test_every_builder_builds_with_its_deferred_imports(environment: None, builder: str, built: str) -> None:
    service = getattr(wiring, builder)()
    assert type(service).__name__ == built
    assert getattr(wiring, builder)() is service, "built once per container"


def test_finishers_hand_webhooks_over_only_where_the_queue_is_known(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = wiring.settings()
    assert set(wiring.webhook_consumers(config)) == {WEBHOOK}
    monkeypatch.delenv("WEBHOOK_QUEUE_URL")
    wiring.reset()
    assert wiring.webhook_consumers(wiring.settings()) == {}


def fresh_modules(handler: str, extra_env: dict[str, str]) -> set[str]:
    """The modules a fresh interpreter holds after importing `handler` (as Lambda's runtime does)."""
    function = handler.removesuffix("_handler")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "common")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_LAMBDA_FUNCTION_NAME": f"unit-{function}",
        **extra_env,
    }
    code = f"import json, sys, {handler}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("handler", ["submit_handler", "callback_handler", "reconcile_handler", "webhook_handler"])
def test_functions_outside_the_jobs_api_do_not_import_it(handler: str) -> None:
    modules = fresh_modules(handler, {"POWERTOOLS_TRACE_DISABLED": "true"})
    loaded = sorted(m for m in modules if m.startswith(("swapdrop.jobs_api", "swapdrop.swap_requests")))
    assert not loaded, f"{handler} imports the jobs API at cold start: {loaded}"


def test_tracing_off_never_imports_the_xray_sdk() -> None:
    modules = fresh_modules("callback_handler", {"POWERTOOLS_TRACE_DISABLED": "true"})
    assert not {m for m in modules if m.startswith("aws_xray_sdk")}, "Tracer built with tracing off"


def test_tracing_on_builds_powertools_tracer() -> None:
    code = "from swapdrop.observability import tracer; print(type(tracer).__module__, tracer.disabled)"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "layers" / "common"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "unit",
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["aws_lambda_powertools.tracing.tracer", "False"]


def test_the_untraced_stand_in_leaves_handlers_as_they_are() -> None:
    from swapdrop.observability import UntracedTracer

    def handler(event: dict[str, str], context: object) -> str:
        return event["x"]

    untraced = UntracedTracer()
    assert untraced.capture_lambda_handler(handler) is handler
    assert untraced.capture_method(handler) is handler
    untraced.put_annotation("job", "1")
    untraced.put_metadata("job", {"a": 1})


def test_the_secrets_provider_shares_the_containers_secrets_manager_client(environment: None) -> None:
    """A provider left to make its own client builds a second boto3 session (tens of ms of every cold start)."""
    assert wiring._secrets().client is wiring._client("secretsmanager")
