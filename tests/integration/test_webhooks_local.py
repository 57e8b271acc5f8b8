"""Per-job webhooks on the local stack, over real HTTP: a receiver on loopback (allowed only through the
stack's AllowPrivateWebhookUrls, which these tests turn on) and the retry schedule compressed with
WebhookRetryScale. Signatures are checked with standardwebhooks against the stack's WebhookSecret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from swapdrop.jobs import webhook_message_id
from swapdrop.webhook_signing import receiver_keys
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions
from swapdrop_local.webhook_receiver import WebhookReceiver

from integration.test_jobs_api_http import MAX_BYTES, RESULT, Http, error, name, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def options(**parameters: str) -> StackOptions:
    return StackOptions(
        api_key="webhook-test-key",
        reconcile_interval=3.0,
        parameters={"ReconcileQuietSeconds": "2", "MaxImageBytes": str(MAX_BYTES), **parameters},
        emulator={"step_delay": 0.1, "engine": lambda _source, _target: RESULT, "callback_workers": 1},
        submit_concurrency=1,
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with RunningStack(options(AllowPrivateWebhookUrls="true", WebhookRetryScale="0.001")) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: RunningStack) -> Http:
    return Http(stack)


@pytest.fixture(scope="module")
def face(api: Http) -> str:
    face = name("wh")
    api.face(face)
    return face


@pytest.fixture(scope="module")
def receiver(stack: RunningStack) -> Iterator[WebhookReceiver]:
    info = stack.info()
    secrets = local_client("secretsmanager", info["region"], info["endpoint_url"])
    secret = secrets.get_secret_value(SecretId=info["webhook_secret_id"])["SecretString"]
    with WebhookReceiver(keys=receiver_keys(secret)) as running:
        yield running


def job_with_webhook(api: Http, face: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    hook: dict[str, Any] = {"url": url, **({"events": events} if events else {})}
    answer = api("POST", "/jobs", {"face": face, "target": {"s3Key": api.s3_target()}, "webhook": hook})
    assert answer.status_code == 202, answer.text
    return answer.json()


def webhook_view(api: Http, job_id: str, status: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        view = api("GET", f"/jobs/{job_id}").json()
        return view if view.get("webhookStatus") == status else None

    return until(settled, 90, f"job {job_id}'s webhook {status}")


def test_500_500_200_is_three_signed_deliveries_of_one_message_recorded_on_the_job(
    api: Http, face: str, receiver: WebhookReceiver
) -> None:
    receiver.answer(500, 500, 200)
    job = job_with_webhook(api, face, f"{receiver.url}/retries?token=t0k3n")
    deliveries = receiver.wait_for(3, "/retries?token=t0k3n")
    assert [d.answered for d in deliveries] == ["500", "500", "200"]
    assert {d.headers["webhook-id"] for d in deliveries} == {webhook_message_id(job["jobId"], "completed")}
    assert all(d.verified for d in deliveries), [d.headers for d in deliveries]
    body = deliveries[-1].json
    assert body["type"] == "job.completed" and body["data"]["jobId"] == job["jobId"]
    assert body["data"]["status"] == "SUCCESS" and body["data"]["resultKey"]
    view = webhook_view(api, job["jobId"], "delivered")
    (record,) = view["webhook"]["deliveries"]
    assert (record["attempts"], record["lastStatus"], record["state"]) == (3, 200, "delivered")
    assert view["webhook"]["url"] == f"{receiver.url}/retries"  # never the query
    assert len(receiver.received("/retries?token=t0k3n")) == 3


def test_410_gets_one_delivery_and_disables_the_webhook(api: Http, face: str, receiver: WebhookReceiver) -> None:
    receiver.answer(410)
    job = job_with_webhook(api, face, f"{receiver.url}/gone")
    view = webhook_view(api, job["jobId"], "disabled")
    assert view["webhook"]["deliveries"][0]["lastStatus"] == 410
    assert len(receiver.received("/gone")) == 1


@pytest.mark.parametrize("failure", ["drop", "hang"])
def test_a_receiver_that_drops_the_connection_or_hangs_is_retried(
    api: Http, face: str, receiver: WebhookReceiver, failure: str
) -> None:
    receiver.answer(failure)
    job = job_with_webhook(api, face, f"{receiver.url}/{failure}")
    deliveries = receiver.wait_for(2, f"/{failure}", timeout=90)
    assert [d.answered for d in deliveries[:2]] == [failure, "200"]
    view = webhook_view(api, job["jobId"], "delivered")
    record = view["webhook"]["deliveries"][0]
    assert record["attempts"] == 2


def test_started_and_progress_messages_arrive_signed(api: Http, face: str, receiver: WebhookReceiver) -> None:
    job = job_with_webhook(api, face, f"{receiver.url}/all", ["started", "progress", "completed"])
    webhook_view(api, job["jobId"], "delivered")
    types = {d.json["type"] for d in receiver.received("/all")}
    assert {"job.started", "job.completed"} <= types
    ids = [d.headers["webhook-id"] for d in receiver.received("/all")]
    assert len(ids) == len(set(ids)) and all(d.verified for d in receiver.received("/all"))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local, metadata"),
        ("http://[fd00:ec2::254]/", "link-local, metadata"),
        ("http://[fe80::1]/hook", "link-local, metadata"),
    ],
)
def test_link_local_and_metadata_urls_are_refused_even_locally(api: Http, face: str, url: str, why: str) -> None:
    answer = api("POST", "/jobs", {"face": face, "target": {"s3Key": "incoming/x.jpg"}, "webhook": {"url": url}})
    assert why in error(answer, 400, "invalid_request")["message"]


def test_loopback_receivers_are_refused_without_the_local_setting(receiver: WebhookReceiver) -> None:
    with RunningStack(options()) as strict:
        api = Http(strict)
        for url in (f"{receiver.url}/hook", "http://[::1]:9/hook", "http://169.254.169.254/"):
            answer = api("POST", "/jobs", {"face": "x", "target": {"s3Key": "incoming/x.jpg"}, "webhook": {"url": url}})
            assert "webhooks go to public addresses only" in error(answer, 400, "invalid_request")["message"]
