"""Per-job webhooks: signing, the messages the state machine records, hand-over, delivery and its schedule,
and the sender's SSRF rules with the address pinned (fake resolvers and pools: no sockets)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes import Clock, FakeJobStore
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from swapdrop import state_machine as sm
from swapdrop.finishing import JobFinisher
from swapdrop.jobs import WEBHOOK, JobStatus, webhook_message_id
from swapdrop.url_rules import shown_url
from swapdrop.webhook_delivery import RETRY_SCHEDULE, WebhookDeliverer
from swapdrop.webhook_sender import SendResult, WebhookSender, retry_after
from swapdrop.webhook_signing import WebhookSigner, receiver_keys
from swapdrop.webhooks import WebhookHandOver, WebhookMessage, webhook_body

from .builders import make_job
from .conftest import World

CURRENT, PREVIOUS = "current-random-secret-value", "previous-random-secret-value"
HOOK = {"url": "https://hooks.example/in?token=s3cr3t", "events": ["started", "progress", "completed"]}


def now() -> datetime:
    return datetime.now(UTC)


# --- signing ------------------------------------------------------------------------------------


def test_receiver_key_is_whsec_base64_of_current_and_verifies_with_standardwebhooks() -> None:
    (key,) = receiver_keys(json.dumps({"current": CURRENT, "previous": ""}))
    assert key == "whsec_" + base64.b64encode(CURRENT.encode()).decode()
    body = json.dumps({"type": "job.completed"})
    headers = WebhookSigner(lambda: json.dumps({"current": CURRENT, "previous": ""})).headers("msg_1", now(), body)
    assert Webhook(key).verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(body + " ", headers)  # any change to the body breaks it


def test_during_rotation_both_signatures_are_sent_and_each_key_verifies() -> None:
    secret = json.dumps({"current": CURRENT, "previous": PREVIOUS})
    new_key, old_key = receiver_keys(secret)
    body = "{}"
    headers = WebhookSigner(lambda: secret).headers("msg_2", now(), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    Webhook(new_key).verify(body, headers)
    Webhook(old_key).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"someone else").decode()).verify(body, headers)


def test_a_whsec_value_in_the_secret_is_used_as_it_is() -> None:
    key = "whsec_" + base64.b64encode(b"k" * 24).decode()
    assert receiver_keys(json.dumps({"current": key})) == [key]
    with pytest.raises(ValueError, match="no key"):
        receiver_keys(json.dumps({"current": "", "previous": ""}))


# --- what the state machine records ----------------------------------------------------------------


def test_started_once_on_submitted_and_progress_once_per_ten_percent_step(world: World) -> None:
    job = make_job(webhook=HOOK)
    job = sm.record_accepted(job, world.clock(), "task-1", None).job
    assert list(job.webhookOutbox or {}) == [webhook_message_id(job.jobId, "started")]
    assert job.needs_attention
    seen: list[str] = list(job.webhookOutbox or {})
    for progress in (3, 12, 15, 19, 20, 47, 99):
        snapshot = _snapshot(progress)
        job = sm.apply_snapshot(job, world.clock(), snapshot).job
        seen += [k for k in job.webhookOutbox or {} if k not in seen]
    steps = [k.rsplit("_", 1)[1] for k in seen if "_progress_" in k]
    assert steps == ["10", "20", "40", "90"]
    handed = sm.webhooks_handed_over(job, world.clock(), tuple(job.webhookOutbox or {})).job
    assert handed.webhookOutbox is None


def test_only_the_events_asked_for_are_recorded(world: World) -> None:
    job = make_job(webhook={"url": HOOK["url"], "events": ["completed"]})
    job = sm.record_accepted(job, world.clock(), "task-1", None).job
    job = sm.apply_snapshot(job, world.clock(), _snapshot(50)).job
    assert job.webhookOutbox is None and job.needs_attention is not False  # open (not terminal) anyway
    assert job.webhookStatus == "pending"


def test_finisher_hands_pending_messages_over_and_the_completed_entry(world: World) -> None:
    queue = FakeWebhookQueue()
    finisher = JobFinisher(
        world.jobs, world.media, world.downloader, world.events, clock=world.clock,
        consumers={WEBHOOK: WebhookHandOver(queue)},
    )  # fmt: skip
    job = world.jobs.put(make_job(webhook=HOOK))
    decision = update(world, job.jobId, lambda j: sm.record_accepted(j, world.clock(), "task-1", None))
    job = finisher.finish(decision.job)
    assert [m.kind for m in queue.sent] == ["started"] and job.webhookOutbox is None
    decision = update(world, job.jobId, lambda j: sm.record_final_failure(j, world.clock(), "boom"))
    job = finisher.finish(decision.job, held=decision.claimed)
    assert [m.webhook_id for m in queue.sent][-1] == webhook_message_id(job.jobId, "completed")
    assert job.deliveries[WEBHOOK].finished and not job.needs_attention


def test_a_failed_hand_over_keeps_the_job_open_for_the_reconciler(world: World) -> None:
    queue = FakeWebhookQueue(fail=True)
    finisher = JobFinisher(
        world.jobs, world.media, world.downloader, world.events, clock=world.clock,
        consumers={WEBHOOK: WebhookHandOver(queue)},
    )  # fmt: skip
    job = world.jobs.put(make_job(webhook=HOOK))
    decision = update(world, job.jobId, lambda j: sm.record_accepted(j, world.clock(), "task-1", None))
    job = finisher.finish(decision.job)
    assert job.webhookOutbox and "openShard" in world.jobs.item(job.jobId)


# --- delivery: outcomes and the schedule -----------------------------------------------------------


class FakeWebhookQueue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[WebhookMessage] = []
        self.fail = fail

    def send(self, messages: list[WebhookMessage]) -> None:
        if self.fail:
            raise RuntimeError("SQS down")
        self.sent.extend(messages)


class ScriptedSender:
    def __init__(self, *answers: SendResult) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        self.calls.append((url, body, headers))
        return self.answers.pop(0)


def delivery_setup(*answers: SendResult, scale: float = 1.0) -> tuple[FakeJobStore, Clock, ScriptedSender, Any]:
    jobs, clock = FakeJobStore(), Clock(now())
    job = jobs.put(make_job(status=JobStatus.SUCCESS, webhook=HOOK, finishedAt="2024-10-16T10:00:00.000Z"))
    sender = ScriptedSender(*answers)
    secret = json.dumps({"current": CURRENT})
    deliverer = WebhookDeliverer(jobs, WebhookSigner(lambda: secret), sender, retry_scale=scale, clock=clock)
    message = WebhookMessage(job.jobId, webhook_message_id(job.jobId, "completed"), "completed", job.finishedAt)
    return jobs, clock, sender, (deliverer, message)


def test_500_500_200_is_three_signed_attempts_with_one_webhook_id() -> None:
    jobs, clock, sender, (deliverer, message) = delivery_setup(
        SendResult(500, "HTTP 500"), SendResult(500, "HTTP 500"), SendResult(200)
    )
    assert deliverer.deliver(message).retry_in == RETRY_SCHEDULE[0]
    assert deliverer.deliver(message).retry_in == pytest.approx(RETRY_SCHEDULE[0], abs=1)  # back early: re-hidden
    assert len(sender.calls) == 1
    clock.advance(seconds=RETRY_SCHEDULE[0])
    assert deliverer.deliver(message).retry_in == RETRY_SCHEDULE[1]
    clock.advance(seconds=RETRY_SCHEDULE[1])
    outcome = deliverer.deliver(message)
    assert outcome.retry_in is None and not outcome.dead_letter
    (key,) = receiver_keys(json.dumps({"current": CURRENT}))
    assert {headers["webhook-id"] for _, _, headers in sender.calls} == {message.webhook_id}
    verified = Webhook(key).verify(sender.calls[0][1], sender.calls[0][2])  # sent "now": verify() checks the time
    assert verified["type"] == "job.completed" and verified["data"]["jobId"] == message.job_id
    for _, body, headers in sender.calls:  # later ones at the test clock's time: the same signature, made by hand
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        expected = Webhook(key).sign(headers["webhook-id"], sent_at, body.decode())
        assert headers["webhook-signature"] == expected
        verified = json.loads(body)
        assert "url" not in (verified["data"].get("result") or {})
    job = jobs.get(message.job_id)
    record = job.webhookDeliveries[message.webhook_id]
    assert (record["state"], record["attempts"], record["lastStatus"]) == ("delivered", 3, 200)
    assert job.webhookStatus == "delivered" and job.public_view()["webhookStatus"] == "delivered"
    assert deliverer.deliver(message).retry_in is None and len(sender.calls) == 3  # a duplicate sends nothing


def test_the_whole_schedule_then_the_dead_letter_queue_and_the_job_says_failed() -> None:
    failures = [SendResult(None, "no answer (ConnectTimeoutError)")] * (len(RETRY_SCHEDULE) + 1)
    jobs, clock, _, (deliverer, message) = delivery_setup(*failures, scale=0.5)
    waits = []
    for _ in range(len(RETRY_SCHEDULE)):
        outcome = deliverer.deliver(message)
        waits.append(outcome.retry_in)
        clock.advance(seconds=outcome.retry_in)
    assert waits == [s * 0.5 for s in RETRY_SCHEDULE]
    assert deliverer.deliver(message).dead_letter
    job = jobs.get(message.job_id)
    record = job.webhookDeliveries[message.webhook_id]
    assert (record["state"], record["attempts"]) == ("failed", 8) and "ConnectTimeoutError" in record["lastError"]
    assert job.webhookStatus == "failed"


def test_410_disables_the_webhook_for_the_job() -> None:
    jobs, _, sender, (deliverer, message) = delivery_setup(SendResult(410, "HTTP 410"))
    assert deliverer.deliver(message).retry_in is None
    job = jobs.get(message.job_id)
    assert job.webhookStatus == "disabled"
    other = WebhookMessage(message.job_id, webhook_message_id(message.job_id, "progress", 50), "progress", "t")
    assert deliverer.deliver(other).retry_in is None and len(sender.calls) == 1  # nothing more is sent
    assert sm._webhook_messages(job, dataclasses.replace(job, status=JobStatus.IN_PROGRESS, progress=60), "t") == {}


def test_retry_after_is_honoured() -> None:
    _, _, _, (deliverer, message) = delivery_setup(SendResult(503, "HTTP 503", retry_after=120))
    assert deliverer.deliver(message).retry_in == 120
    assert retry_after("30") == 30 and retry_after("soon") is None
    assert retry_after("Wed, 16 Oct 2024 10:01:00 GMT", now=lambda: 1729072800.0) == 60


# --- the sender: SSRF rules, redirects, the pinned address ---------------------------------------


class FakePool:
    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers = status, headers or {}
        self.requests: list[dict[str, Any]] = []

    def urlopen(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests.append({"method": method, "url": url, **kwargs})
        pool = self

        class Answer:
            status = pool.status
            headers = pool.headers

            def read(self, amount: int) -> bytes:
                return b""

            def release_conn(self) -> None:
                pass

        return Answer()


class Pools:
    def __init__(self, pool: FakePool) -> None:
        self.pool = pool
        self.opened: list[tuple[str, str, int, str, float]] = []

    def __call__(self, scheme: str, address: str, port: int, host: str, timeout: float) -> FakePool:
        self.opened.append((scheme, address, port, host, timeout))
        return self.pool


def test_connects_to_the_checked_address_even_when_the_name_answers_differently_later() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["169.254.169.254"]])
    lookups: list[str] = []

    def rebinding(host: str) -> list[str]:
        lookups.append(host)
        return next(answers)

    pools = Pools(FakePool(204))
    sender = WebhookSender(resolver=rebinding, pools=pools)
    result = sender.post("https://hooks.example:8443/in?token=s3cr3t", b"{}", {"webhook-id": "m"})
    assert result.delivered and lookups == ["hooks.example"]
    assert pools.opened == [("https", "93.184.216.34", 8443, "hooks.example", 10.0)]
    (request,) = pools.pool.requests
    assert request["url"] == "/in?token=s3cr3t" and request["headers"]["Host"] == "hooks.example:8443"
    assert request["redirect"] is False and request["retries"] is False


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://127.0.0.1/hook", None),
        ("http://[::1]/hook", None),
        ("http://169.254.169.254/latest/meta-data", None),
        ("http://[fd00:ec2::254]/hook", None),
        ("http://10.1.2.3/hook", None),
        ("http://rebind.example/hook", ["93.184.216.34", "169.254.169.254"]),
        ("http://internal.example/hook", ["192.168.1.20"]),
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(url: str, resolved: list[str] | None) -> None:
    pools = Pools(FakePool())

    def resolver(host: str) -> list[str]:
        return resolved or [host.strip("[]")]

    result = WebhookSender(resolver=resolver, pools=pools).post(url, b"{}", {})
    assert result.status is None and "disallowed address" in (result.error or "")
    assert pools.opened == []


def test_loopback_only_with_the_local_setting() -> None:
    pools = Pools(FakePool(200))
    sender = WebhookSender(allow_private=True, resolver=lambda host: [host], pools=pools)
    assert sender.post("http://127.0.0.1:9/hook", b"{}", {}).delivered
    refused = WebhookSender(allow_private=True, resolver=lambda host: [host], pools=pools)
    assert "disallowed" in (refused.post("http://169.254.169.254/", b"{}", {}).error or "")  # never metadata


def test_redirects_are_not_followed() -> None:
    pool = FakePool(302, {"Location": "http://169.254.169.254/"})
    result = WebhookSender(resolver=lambda host: ["93.184.216.34"], pools=Pools(pool)).post(
        "https://h.example/", b"", {}
    )
    assert not result.delivered and "redirects are not followed" in (result.error or "")
    assert len(pool.requests) == 1 and pool.requests[0]["redirect"] is False


def test_urls_are_shown_without_their_query() -> None:
    assert shown_url("https://hooks.example:8443/in?token=s3cr3t") == "https://hooks.example:8443/in"


def test_the_body_is_the_public_record_without_secrets() -> None:
    job = make_job(status=JobStatus.SUCCESS, webhook=HOOK, taskToken="tok", resultKey="results/a.jpg")
    body = webhook_body(job, WebhookMessage(job.jobId, "m", "completed", "2024-10-16T10:00:00.000Z"))
    assert body["type"] == "job.completed" and body["data"]["resultKey"] == "results/a.jpg"
    assert "taskToken" not in body["data"] and "webhookDeliveries" not in body["data"]


# --- the jobs API refuses bad webhook URLs at request time --------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://169.254.169.254/latest", "link-local, metadata"),
        ("http://[fd00:ec2::254]/", "link-local, metadata"),
        ("ftp://hooks.example/", "not http or https"),
        ("https://user:pw@hooks.example/", "credentials"),
    ],
)
def test_api_refuses_webhook_urls_with_a_reason(api: Any, url: str, why: str) -> None:
    from .test_jobs_api import create

    reply = create({"face": "alice", "target": {"url": "https://images.example/b.png"}, "webhook": {"url": url}})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request"), reply.body
    assert why in reply.error["message"] and reply.error["details"][0]["loc"] == ["body", "webhook", "url"]
    assert api.world.jobs.items == {}


def _snapshot(progress: int) -> Any:
    from swapdrop.task_snapshot import TaskSnapshot, UpstreamStatus

    return TaskSnapshot(id="task-1", status=UpstreamStatus.IN_PROGRESS, progress=progress)


def update(world: World, job_id: str, decide: Any) -> sm.Decision:
    from swapdrop.job_updates import update_job

    return update_job(world.jobs, job_id, decide)
