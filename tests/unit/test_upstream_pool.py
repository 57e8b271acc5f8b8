"""upstream_pool on fakes (no sockets): the secret's pool parsed (every invalid field named, keys never
shown), submits spread by free capacity, queue-full failed over at once, a lost answer kept on its member,
the per-member breaker (bench, trial, close, double), its metrics, and the capacity wait."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import submit_handler
from fakes import FakeLambdaContext, FakeSubmitQueue, FakeSubmitter
from swapdrop import state_machine as sm
from swapdrop import wiring
from swapdrop.config import AuthStyle
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.observability import metrics
from swapdrop.submission import Outcome, SubmitResult, capacity_delay_seconds
from swapdrop.submit_queue import SubmitQueue
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import (
    Accepted,
    Rejected,
    Retryable,
    SubmitOutcome,
    SwapImage,
    SwapRequest,
    UpstreamError,
    classify_submit_response,
)
from swapdrop.upstream_pool import (
    DEFAULT_MEMBER,
    MAX_BENCH_SECONDS,
    PoolConfigError,
    PoolMember,
    UpstreamPool,
    parse_pool,
)

from .builders import TASK_ID, make_job, snap, upload
from .conftest import World
from .test_handlers import API_JOB_ID, QUEUE_ARN, sqs_event

KEY = "sk-VERY-SECRET-0001"
LEASE = 900
BASE = "https://relay.example.com"
REQUEST = SwapRequest(SwapImage(b"s", "image/png"), SwapImage(b"t", "image/png"), "https://hook/x?token=t", "job-1")
FULL = classify_submit_response(200, b'{"code": 23, "description": "queue full"}')
ERROR_500 = classify_submit_response(502, b"")
KEY_REFUSED = classify_submit_response(401, b"")
INVALID = classify_submit_response(200, b'{"code": 4, "description": "bad image"}')
LOST = Retryable("the swap API did not answer in time after the request was sent", maybe_accepted=True)


def ok(code: int = 1, position: int | None = None, task: str = "task-1") -> Accepted:
    return Accepted(task, position, code, "")


def pool_json(*members: dict[str, Any], **top: Any) -> str:
    return json.dumps({"apiKey": KEY, **top, "members": list(members)})


# --- fakes ----------------------------------------------------------------------------------


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """One member's UpstreamClient: scripted submit answers (default: accepted), recorded requests."""

    def __init__(self, member: PoolMember) -> None:
        self.member = member
        self.script: list[SubmitOutcome] = []
        self.requests: list[SwapRequest] = []
        self.recent: list[TaskSnapshot] | UpstreamError | None = []
        self.cancelled: list[str] = []

    def submit_swap(self, request: SwapRequest) -> SubmitOutcome:
        self.requests.append(request)
        return self.script.pop(0) if self.script else ok()

    def recent_tasks(self) -> list[TaskSnapshot] | None:
        if isinstance(self.recent, UpstreamError):
            raise self.recent
        return self.recent

    def cancel_task(self, task_id: str) -> bool | None:
        self.cancelled.append(task_id)
        return True


class FirstChoice:
    """An rng that records the weights it is offered and picks the heaviest (the first of equals)."""

    def __init__(self) -> None:
        self.offered: list[dict[str, float]] = []

    def choices(self, population: Sequence[PoolMember], weights: Sequence[float]) -> list[PoolMember]:
        self.offered.append({m.name: w for m, w in zip(population, weights, strict=True)})
        best = max(range(len(population)), key=lambda i: (weights[i], -i))
        return [population[best]]


class Harness:
    def __init__(self, secret: str, rng: Any = None, **kwargs: Any) -> None:
        self.secret = secret
        self.secret_reads = 0
        self.clock = Monotonic()
        self.clients: dict[str, FakeClient] = {}
        self.rng = rng or FirstChoice()
        self.pool = UpstreamPool(
            self.read,
            default_base_url=BASE,
            default_auth_style=AuthStyle.BEARER,
            default_instance_id="77",
            client_factory=self.build,
            monotonic=self.clock,
            rng=self.rng,
            **kwargs,
        )

    def read(self) -> str:
        self.secret_reads += 1
        return self.secret

    def build(self, member: PoolMember) -> FakeClient:
        self.clients[member.name] = FakeClient(member)
        return self.clients[member.name]

    def calls(self) -> dict[str, int]:
        return {name: len(client.requests) for name, client in self.clients.items()}


def three() -> Harness:
    return Harness(pool_json({"name": "a"}, {"name": "b", "instanceId": "222"}, {"name": "c", "running": 5}))


def emf_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF lines printed so far (single_metric prints at once)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def counts(lines: list[dict[str, Any]], name: str) -> list[tuple[float, dict[str, str]]]:
    found = []
    for blob in lines:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if name in [m["Name"] for m in directive["Metrics"]]:
                dims = {d: blob[d] for group in directive["Dimensions"] for d in group if d != "service"}
                value = blob[name]
                found.append((sum(value) if isinstance(value, list) else value, dims))
    return found


# --- parsing --------------------------------------------------------------------------------


def test_a_plain_key_is_one_default_member_from_the_parameters() -> None:
    pool = parse_pool(f"  {KEY}\n", BASE + "/", AuthStyle.MJ_API_SECRET, " 77 ")
    (member,) = pool.members
    assert member == PoolMember(DEFAULT_MEMBER, BASE, KEY, AuthStyle.MJ_API_SECRET, "77", 3, 10)


def test_a_pool_document_fills_each_member_from_the_defaults() -> None:
    secret = pool_json(
        {"name": "relay-a-1", "instanceId": 1234, "running": 3, "queued": 10},
        {"name": "relay-a-2", "instanceId": "5678"},
        {"name": "relay-b", "baseUrl": "https://relay-b.example.com/", "apiKey": "sk-b", "authStyle": "mj-api-secret"},
        benchSeconds=30,
    )
    pool = parse_pool(secret, BASE, AuthStyle.BEARER, "ignored-with-a-pool")
    assert pool.bench_seconds == 30
    assert [
        (m.name, m.base_url, m.api_key, m.auth_style, m.instance_id, m.running, m.queued) for m in pool.members
    ] == [
        ("relay-a-1", BASE, KEY, AuthStyle.BEARER, "1234", 3, 10),
        ("relay-a-2", BASE, KEY, AuthStyle.BEARER, "5678", 3, 10),
        ("relay-b", "https://relay-b.example.com", "sk-b", AuthStyle.MJ_API_SECRET, "", 3, 10),
    ]


MEMBER_OK = {"name": "m1"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"members": []}, "members: List should have at least 1 item"),
        ({"members": [{"name": f"m{i}"} for i in range(51)]}, "members: List should have at most 50 items"),
        ({"members": {"m1": {}}}, "members: Input should be a valid list"),
        ({"members": [{}]}, "members[0].name: Field required"),
        ({"members": [{"name": "has space"}]}, "members[0].name: String should match pattern"),
        ({"members": [{"name": "-dash-first"}]}, "members[0].name: String should match pattern"),
        ({"members": [{"name": "x" * 65}]}, "members[0].name: String should match pattern"),
        ({"members": [MEMBER_OK, {"name": "m1"}]}, "names a member twice: m1"),
        ({"members": [MEMBER_OK, {"name": "m2", "running": 0}]}, "members[1].running: Input should be greater"),
        ({"members": [{"name": "m1", "running": "3"}]}, "members[0].running: Input should be a valid integer"),
        ({"members": [{"name": "m1", "running": 2.5}]}, "members[0].running: Input should be a valid integer"),
        ({"members": [{"name": "m1", "queued": -1}]}, "members[0].queued: Input should be greater than or equal to 0"),
        ({"members": [{"name": "m1", "authStyle": "basic"}]}, "members[0].authStyle: Input should be 'bearer'"),
        ({"members": [{"name": "m1", "baseUrl": "ftp://x.example"}]}, "members[0].baseUrl: URL scheme should be"),
        ({"members": [{"name": "m1", "baseUrl": "not a url"}]}, "members[0].baseUrl:"),
        ({"members": [{"name": "m1", "instanceId": 1.5}]}, "members[0].instanceId: Input should be a valid string"),
        ({"members": [{"name": "m1", "apiKey": ""}]}, "members[0].apiKey: String should have at least 1 character"),
        ({"members": [{"name": "m1", "apiKey": 12345}]}, "members[0].apiKey: Input should be a valid string"),
        ({"members": [MEMBER_OK], "benchSeconds": 0}, "benchSeconds: Input should be greater than 0"),
        ({"members": [MEMBER_OK], "benchSeconds": 7200}, "benchSeconds: Input should be less than or equal to 3600"),
        ({"members": [{"name": "m1", "queue": 3}]}, "members[0].<an unknown field>: Extra inputs are not permitted"),
        ({}, "members: Field required"),
    ],
)
def test_every_invalid_field_is_named_and_no_key_is_shown(document: dict[str, Any], message: str) -> None:
    secret = json.dumps({"apiKey": KEY, **document})
    with pytest.raises(PoolConfigError) as raised:
        parse_pool(secret, BASE, AuthStyle.BEARER)
    assert message in str(raised.value)
    assert KEY not in str(raised.value)
    assert raised.value.__cause__ is None  # no pydantic error (which could carry the input) chained


def test_a_member_without_any_key_is_named() -> None:
    secret = json.dumps({"members": [{"name": "m1", "apiKey": KEY}, {"name": "m2"}]})
    with pytest.raises(PoolConfigError, match=r"members\[1\] \(m2\) has no apiKey, and the pool has no top-level"):
        parse_pool(secret, BASE, AuthStyle.BEARER)


def test_a_key_used_as_a_field_name_or_broken_json_is_never_echoed() -> None:
    for secret in (json.dumps({KEY: 1, "members": [MEMBER_OK]}), "{" + KEY, '{"apiKey": "' + KEY + '", members: []}'):
        with pytest.raises(PoolConfigError) as raised:
            parse_pool(secret, BASE, AuthStyle.BEARER)
        assert KEY not in str(raised.value)
    assert "not valid JSON (line 1 column 2)" in _error("{" + KEY)
    assert "<an unknown field>: Extra inputs are not permitted" in _error(json.dumps({KEY: 1, "members": [MEMBER_OK]}))


def _error(secret: str) -> str:
    with pytest.raises(PoolConfigError) as raised:
        parse_pool(secret, BASE, AuthStyle.BEARER)
    return str(raised.value)


def test_keys_are_in_no_repr() -> None:
    pool = parse_pool(pool_json({"name": "a", "apiKey": "sk-own-key-9"}, {"name": "b"}), BASE, AuthStyle.BEARER)
    harness = Harness(pool_json({"name": "a", "apiKey": "sk-own-key-9"}))
    harness.pool.members()
    for shown in (repr(pool), repr(pool.members[0]), str(pool.members), repr(harness.pool)):
        assert KEY not in shown and "sk-own-key-9" not in shown


def test_a_bad_pool_fails_at_first_use_and_a_fixed_secret_is_read_again() -> None:
    harness = Harness(json.dumps({"members": [{"name": "bad name"}]}))
    with pytest.raises(PoolConfigError, match=r"members\[0\]\.name"):
        harness.pool.has_capacity()
    harness.secret = pool_json({"name": "a"}, {"name": "b"})
    assert harness.pool.members() == ["a", "b"]
    harness.secret = KEY  # back to a plain key: one member again
    assert harness.pool.members() == [DEFAULT_MEMBER]


# --- members and clients ------------------------------------------------------------------


def test_client_of_a_member_and_the_first_for_jobs_without_one() -> None:
    harness = three()
    assert harness.pool.members() == ["a", "b", "c"]
    assert harness.pool.client("b") is harness.clients["b"]
    for unknown in (None, "", "gone-from-the-pool"):
        assert harness.pool.client(unknown) is harness.clients["a"]


def test_the_secret_is_parsed_again_only_when_its_value_changes() -> None:
    harness = three()
    first = harness.pool.client("a")
    harness.pool.members()
    assert harness.pool.client("a") is first  # same value: same clients
    harness.secret = pool_json({"name": "a"}, {"name": "d"})
    assert harness.pool.members() == ["a", "d"]
    assert harness.pool.client("a") is not first  # the key may have changed: clients built again


def test_cancel_and_recent_tasks_go_to_the_member() -> None:
    harness = three()
    harness.pool.members()
    assert harness.pool.cancel_task("t-9", "c") is True
    assert harness.pool.cancel_task("t-1") is True
    assert (harness.clients["c"].cancelled, harness.clients["a"].cancelled) == (["t-9"], ["t-1"])
    harness.clients["a"].recent = [snap("IN_PROGRESS", task_id="t-a", state="job-a")]
    harness.clients["b"].recent = UpstreamError("GET /mj/task/list answered HTTP 502")
    harness.clients["c"].recent = [snap("IN_PROGRESS", task_id="t-c", state="job-c")]
    assert [t.id for t in harness.pool.recent_tasks("c") or []] == ["t-c"]
    assert [t.id for t in harness.pool.recent_tasks() or []] == ["t-a", "t-c"]  # b's failure skipped
    for client in harness.clients.values():
        client.recent = None
    assert harness.pool.recent_tasks() is None
    harness.clients["b"].recent = UpstreamError("down")
    with pytest.raises(UpstreamError):
        harness.pool.recent_tasks()  # nobody answered a list: the failure is the answer


# --- spreading ------------------------------------------------------------------------------


def test_submits_are_weighted_by_each_members_free_capacity() -> None:
    harness = three()
    rng = harness.rng
    harness.pool.members()
    harness.clients["c"].script = [ok(22, position=4)]  # 4 waiting ahead of it: 10 - 4 - 1 = 5 queue places left
    assert harness.pool.submit_swap(REQUEST).member == "c"  # c: 5 running + 10 queued, the largest
    harness.pool.submit_swap(REQUEST)  # a, code 1: a running slot was free, so its queue is empty
    harness.pool.submit_swap(REQUEST)
    assert rng.offered == [{"a": 13, "b": 13, "c": 15}, {"a": 13, "b": 13, "c": 5}, {"a": 12, "b": 13, "c": 5}]
    assert harness.calls() == {"a": 1, "b": 1, "c": 1}


def test_members_believed_full_are_still_tried_by_size_when_none_has_room() -> None:
    harness = Harness(pool_json({"name": "a", "running": 1, "queued": 1}, {"name": "b", "running": 2, "queued": 2}))
    harness.pool.members()
    harness.clients["b"].script = [ok(22, position=1)]  # b: 2 - 1 - 1 = 0 left
    harness.pool.submit_swap(REQUEST)
    harness.clients["a"].script = [ok(22, position=0)]  # a: 1 - 0 - 1 = 0 left
    harness.pool.submit_swap(REQUEST)
    assert harness.pool.has_capacity() is True  # estimates, not answers: only queue-full stops asking
    harness.pool.submit_swap(REQUEST)
    assert harness.rng.offered[-1] == {"a": 2, "b": 4}


def test_a_seeded_rng_spreads_a_burst_over_every_member_by_size() -> None:
    harness = Harness(
        pool_json({"name": "small", "running": 1, "queued": 1}, {"name": "big", "running": 10, "queued": 30}),
        rng=random.Random(7),
    )
    for _ in range(20):
        harness.pool.submit_swap(REQUEST)
    calls = harness.calls()
    assert calls["big"] > calls["small"] > 0
    assert sum(calls.values()) == 20


def test_each_member_gets_its_own_instance_id() -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [FULL]
    harness.clients["a"].script = [FULL]
    harness.pool.submit_swap(REQUEST)
    assert [r.instance_id for name in "abc" for r in harness.clients[name].requests] == ["", "222", ""]
    assert {r.state for name in "abc" for r in harness.clients[name].requests} == {"job-1"}


# --- failover -------------------------------------------------------------------------------


def test_queue_full_moves_the_same_request_to_another_member_at_once() -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [FULL]
    outcome = harness.pool.submit_swap(REQUEST)
    assert outcome == Accepted("task-1", None, 1, "", member="a")
    assert harness.calls() == {"a": 1, "b": 0, "c": 1}
    assert harness.clients["a"].requests[0].source == REQUEST.source
    assert harness.pool.member_state("c")["full"] is True
    assert failovers() == 1


def failovers() -> float:
    return sum(metrics.metric_set.get("UpstreamFailovers", {}).get("Value", []))


def test_failover_counted_once_per_move() -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [FULL]
    harness.clients["a"].script = [ERROR_500]
    assert harness.pool.submit_swap(REQUEST).member == "b"
    assert failovers() == 2
    harness.pool.submit_swap(REQUEST)  # taken at once
    assert failovers() == 2


def test_every_member_full_is_a_capacity_wait_then_no_capacity_until_the_cooldown() -> None:
    harness = three()
    harness.pool.members()
    for client in harness.clients.values():
        client.script = [FULL]
    outcome = harness.pool.submit_swap(REQUEST)
    assert isinstance(outcome, Retryable) and outcome.capacity and not outcome.maybe_accepted
    assert outcome.reason.startswith("every upstream member is full (")
    assert "c: code 23 QUEUE_REJECTED" in outcome.reason
    assert harness.pool.has_capacity() is False
    again = harness.pool.submit_swap(REQUEST)  # nobody asked while they are full
    assert isinstance(again, Retryable) and again.capacity and "a: full" in again.reason
    assert harness.calls() == {"a": 1, "b": 1, "c": 1}
    harness.clock.now += 5
    assert harness.pool.has_capacity() is True
    for client in harness.clients.values():
        client.script = [FULL]
    harness.pool.submit_swap(REQUEST)
    harness.clock.now += 5
    assert harness.pool.has_capacity() is False  # full again: the cooldown doubled to 10 s
    harness.clock.now += 5
    assert harness.pool.has_capacity() is True


def test_an_answer_lost_after_sending_is_not_failed_over() -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [LOST]
    outcome = harness.pool.submit_swap(REQUEST)
    assert outcome == Retryable(LOST.reason, maybe_accepted=True, member="c")
    assert harness.calls() == {"a": 0, "b": 0, "c": 1}


def test_a_refusal_of_the_job_is_returned_not_failed_over() -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [INVALID]
    assert harness.pool.submit_swap(REQUEST) == INVALID
    assert harness.calls() == {"a": 0, "b": 0, "c": 1}


def test_failures_are_failed_over_and_only_failures_spend_the_attempt() -> None:
    harness = Harness(pool_json({"name": "a"}, {"name": "b"}))
    harness.pool.members()
    harness.clients["a"].script = [ERROR_500]
    harness.clients["b"].script = [ERROR_500]
    outcome = harness.pool.submit_swap(REQUEST)
    assert isinstance(outcome, Retryable) and not outcome.capacity  # a real failure: it counts
    assert outcome.member in ("a", "b") and "HTTP 502" in outcome.reason
    harness.clients["a"].script = [ERROR_500]
    harness.clients["b"].script = [FULL]
    mixed = harness.pool.submit_swap(REQUEST)
    assert isinstance(mixed, Retryable) and mixed.capacity  # b is full: a wait, a's breaker counted


def test_a_refused_key_benches_that_member_and_tries_the_next(capsys: pytest.CaptureFixture[str]) -> None:
    harness = three()
    harness.pool.members()
    harness.clients["c"].script = [KEY_REFUSED]
    assert harness.pool.submit_swap(REQUEST).member == "a"
    assert harness.pool.member_state("c")["benched"] is True
    assert counts(emf_lines(capsys), "UpstreamMemberBenched") == [(1.0, {"Member": "c"})]


def test_a_key_refused_by_every_member_is_the_answer() -> None:
    harness = Harness(pool_json({"name": "a"}, {"name": "b"}))
    harness.pool.members()
    harness.clients["a"].script = [KEY_REFUSED]
    harness.clients["b"].script = [KEY_REFUSED]
    outcome = harness.pool.submit_swap(REQUEST)
    assert isinstance(outcome, Rejected) and outcome.reason == "HTTP 401: the API key was refused"
    # Both benched now: the next jobs wait (no attempt spent) until a trial, rather than all failing.
    assert harness.pool.has_capacity() is False


# --- the breaker ----------------------------------------------------------------------------


def test_three_failures_bench_a_member_then_a_trial_closes_or_doubles(capsys: pytest.CaptureFixture[str]) -> None:
    harness = Harness(pool_json({"name": "a", "running": 30}, {"name": "b"}, benchSeconds=60))
    harness.pool.members()
    for _ in range(3):
        harness.clients["a"].script = [ERROR_500]
        assert harness.pool.submit_swap(REQUEST).member == "b"  # each failed over at once
    assert harness.pool.member_state("a") | {"free": 0} == {
        "free": 0,
        "full": False,
        "benched": True,
        "failures": 0,
        "bench_seconds": 60,
    }
    assert counts(emf_lines(capsys), "UpstreamMemberBenched") == [(1.0, {"Member": "a"})]
    harness.clients["a"].script = []
    harness.pool.submit_swap(REQUEST)
    assert harness.calls()["a"] == 3  # benched: not asked
    harness.clock.now += 60
    harness.clients["a"].script = [ERROR_500]  # the trial fails: benched twice as long
    harness.pool.submit_swap(REQUEST)
    assert harness.calls()["a"] == 4
    assert harness.pool.member_state("a")["bench_seconds"] == 120
    harness.clock.now += 119
    assert harness.pool.member_state("a")["benched"] is True
    harness.clock.now += 1
    harness.pool.submit_swap(REQUEST)  # the trial succeeds: closed
    assert harness.calls()["a"] == 5
    assert harness.pool.member_state("a") | {"free": 0} == {
        "free": 0,
        "full": False,
        "benched": False,
        "failures": 0,
        "bench_seconds": 0,
    }
    assert counts(emf_lines(capsys), "UpstreamMemberBenched") == [(1.0, {"Member": "a"})]  # the trial's bench


def test_a_member_failing_on_every_trial_is_benched_at_most_ten_minutes() -> None:
    harness = Harness(pool_json({"name": "a"}, {"name": "b"}, benchSeconds=60), failures_to_bench=1)
    harness.pool.members()
    lengths = []
    for _ in range(7):
        harness.clients["a"].script = [ERROR_500]
        harness.clients["b"].script = [FULL]
        harness.pool.submit_swap(REQUEST)
        lengths.append(harness.pool.member_state("a")["bench_seconds"])
        harness.clock.now += MAX_BENCH_SECONDS
    assert lengths == [60, 120, 240, 480, 600, 600, 600]


def test_successes_between_failures_keep_the_breaker_closed() -> None:
    harness = Harness(pool_json({"name": "a"}))
    harness.pool.members()
    for _ in range(5):
        harness.clients["a"].script = [ERROR_500, ERROR_500, ok()]
        harness.pool.submit_swap(REQUEST)
        harness.pool.submit_swap(REQUEST)
        harness.pool.submit_swap(REQUEST)
    assert harness.pool.member_state("a")["benched"] is False


def test_one_member_benched_answers_as_a_capacity_wait() -> None:
    harness = Harness(KEY)  # today's single key
    harness.pool.members()
    for _ in range(3):
        harness.clients[DEFAULT_MEMBER].script = [ERROR_500]
        outcome = harness.pool.submit_swap(REQUEST)
        assert isinstance(outcome, Retryable) and outcome.member == DEFAULT_MEMBER and not outcome.capacity
    assert harness.pool.has_capacity() is False
    waiting = harness.pool.submit_swap(REQUEST)
    assert isinstance(waiting, Retryable) and waiting.capacity and "default: benched" in waiting.reason


# --- the submitter on the pool: the member recorded, the capacity wait ---------------------------

TARGET_KEY = "inbox/alice/t.png"


@pytest.fixture
def ready(world: World, images: SimpleNamespace) -> World:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(TARGET_KEY, images.png)
    return world


def store_calls(world: World) -> tuple[int, int, int, int]:
    return world.jobs.get_calls, world.jobs.replace_calls, len(world.jobs.writes), len(world.media.reads)


def stored(world: World, job_id: str) -> Job:
    job = world.jobs.get(job_id)
    assert job is not None
    return job


def test_the_member_that_took_the_task_is_recorded_with_the_submit_time(ready: World) -> None:
    ready.gateway.script(Accepted(TASK_ID, 2, 22, "", member="relay-b"))
    item = upload(TARGET_KEY)
    assert ready.submitter().submit(item, LEASE).outcome is Outcome.SUBMITTED
    job = stored(ready, item.job_id)
    assert (job.status, job.taskId, job.upstreamMember, job.submittedAt) == (
        JobStatus.SUBMITTED,
        TASK_ID,
        "relay-b",
        iso(ready.clock()),
    )


def test_no_capacity_defers_before_any_store_call(ready: World) -> None:
    ready.gateway.script(Retryable("every upstream member is full (a: full)", capacity=True))
    item = upload(TARGET_KEY)
    ready.submitter().submit(item, LEASE)  # the job exists, waiting
    before = store_calls(ready)
    ready.gateway.capacity = False
    result = ready.submitter().submit_job(item.job_id, LEASE)
    assert (result.outcome, result.capacity_wait) == (Outcome.RETRY_LATER, True)
    assert result.retry_after_seconds is not None and 10 <= result.retry_after_seconds <= 30  # 20 s, jittered
    assert store_calls(ready) == before  # no read, no write, no image read
    assert len(ready.gateway.requests) == 1


def test_a_new_upload_while_the_pool_is_full_is_recorded_untaken_and_deferred(ready: World) -> None:
    """With room, a new job is created already taken (one write); without, it is created as it waits."""
    ready.gateway.capacity = False
    item = upload(TARGET_KEY)
    result = ready.submitter().submit(item, LEASE)
    assert (result.outcome, result.capacity_wait) == (Outcome.RETRY_LATER, True)
    job = stored(ready, item.job_id)
    assert (job.status, job.attempts, job.leaseUntil, job.version) == (JobStatus.PENDING, 0, None, 0)
    assert ready.gateway.requests == []
    ready.gateway.capacity = True
    ready.gateway.script(Accepted(TASK_ID, 0, 1, ""))
    assert ready.submitter().submit_job(item.job_id, LEASE).outcome is Outcome.SUBMITTED
    assert (stored(ready, item.job_id).attempts, len(ready.gateway.requests)) == (1, 1)


def test_a_capacity_wait_spends_no_attempt_and_clears_the_lease(ready: World) -> None:
    item = upload(TARGET_KEY)
    submitter = ready.submitter()
    for _ in range(ready.policy.max_attempts * 4):
        ready.gateway.script(Retryable("every upstream member is full (a: code 23)", capacity=True))
        result = submitter.submit(item, LEASE)
        assert (result.outcome, result.capacity_wait) == (Outcome.RETRY_LATER, True)
        job = stored(ready, item.job_id)
        assert (job.status, job.attempts, job.leaseUntil) == (JobStatus.PENDING, 0, None)
        assert job.lastError == "every upstream member is full (a: code 23)"
    ready.gateway.script(Retryable("HTTP 502"))  # a real failure still counts
    assert submitter.submit(item, LEASE).capacity_wait is False
    assert stored(ready, item.job_id).attempts == 1


def test_a_burst_with_every_member_full_never_reaches_max_submit_attempts(
    world: World, images: SimpleNamespace
) -> None:
    harness = Harness(pool_json({"name": "a"}, {"name": "b"}), rng=random.Random(3))
    harness.pool.members()
    world.media.put("faces/alice.jpg", images.jpeg)
    items = [upload(f"inbox/alice/t{i}.png") for i in range(12)]
    for item in items:
        world.media.put(item.key, images.png)
    submitter = world.submitter(upstream=harness.pool)
    for _ in range(world.policy.max_attempts * 3):  # each round: every member answers queue-full
        for client in harness.clients.values():
            client.script = [FULL] * 50
        results = [submitter.submit(item, LEASE) for item in items]
        assert {(r.outcome, r.capacity_wait) for r in results} == {(Outcome.RETRY_LATER, True)}
        harness.clock.now += 60  # past the cooldown
    jobs = [stored(world, item.job_id) for item in items]
    assert {(j.status, j.attempts) for j in jobs} == {(JobStatus.PENDING, 0)}
    assert sum(harness.calls().values()) < 2 * world.policy.max_attempts * 3 * len(items)  # full: not all asked
    for client in harness.clients.values():
        client.script = []  # room again: every job is taken, on the member that took it
    for item in items:
        submitter.submit(item, LEASE)
    jobs = [stored(world, item.job_id) for item in items]
    assert {(j.status, j.attempts) for j in jobs} == {(JobStatus.SUBMITTED, 1)}
    assert {j.upstreamMember for j in jobs} == {"a", "b"}


def test_a_lost_answer_records_its_member_and_the_next_attempt_looks_there(ready: World) -> None:
    ready.gateway.pool_members = ["a", "b", "c"]
    ready.gateway.script(Retryable("no answer after sending", maybe_accepted=True, member="b"))
    item = upload(TARGET_KEY)
    ready.submitter().submit(item, LEASE)
    job = stored(ready, item.job_id)
    assert (job.upstreamMember, job.submitInDoubt, job.attempts) == ("b", True, 1)
    ready.gateway.recent = [snap("IN_PROGRESS", task_id=TASK_ID, state=item.job_id)]
    result = ready.submitter().submit_job(item.job_id, LEASE)
    assert (result.outcome, result.detail) == (Outcome.SUBMITTED, TASK_ID)
    assert ready.gateway.recent_members == ["b"]
    assert stored(ready, item.job_id).upstreamMember == "b"


def test_a_task_left_by_a_dead_worker_is_searched_member_by_member_and_its_member_recorded(ready: World) -> None:
    item = upload(TARGET_KEY)
    ready.gateway.pool_members = ["a", "b"]
    ready.gateway.script(Accepted(TASK_ID, None, 1, "", member="b"))
    ready.jobs.put(
        make_job(jobId=item.job_id, targetKey=TARGET_KEY, attempts=1, leaseUntil=int(ready.clock().timestamp()) - 1)
    )
    lists = iter([[], [snap("SUBMITTED", task_id=TASK_ID, state=item.job_id)]])
    ready.gateway.recent_tasks = lambda member=None: (ready.gateway.recent_members.append(member), next(lists))[1]  # type: ignore[method-assign]
    result = ready.submitter().submit_job(item.job_id, LEASE)
    assert (result.outcome, result.detail) == (Outcome.SUBMITTED, TASK_ID)
    assert ready.gateway.recent_members == ["a", "b"]
    job = stored(ready, item.job_id)
    assert (job.taskId, job.upstreamMember, job.status) == (TASK_ID, "b", JobStatus.SUBMITTED)
    assert ready.gateway.requests == []  # adopted, not sent again


def test_the_task_of_a_job_cancelled_in_flight_is_cancelled_on_its_member(ready: World) -> None:
    item = upload(TARGET_KEY)
    ready.gateway.during_submit = lambda _: update_job(
        ready.jobs, item.job_id, lambda j: sm.cancel(j, ready.clock(), "stopped by its owner")
    )
    ready.gateway.script(Accepted(TASK_ID, None, 1, "", member="relay-c"))
    ready.submitter().submit(item, LEASE)
    assert (ready.gateway.cancelled, ready.gateway.cancel_members) == ([TASK_ID], ["relay-c"])


def test_a_capacity_wait_goes_back_as_a_new_message_not_a_receive(monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = SubmitResult(API_JOB_ID, Outcome.RETRY_LATER, "every upstream member is full", 17, capacity_wait=True)
    submitter = FakeSubmitter(lambda u: SubmitResult(u.job_id, Outcome.SUBMITTED), job_answer=lambda _: waiting)
    queue = FakeSubmitQueue()
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", lambda: queue)
    answer = submit_handler.lambda_handler(sqs_event(json.dumps({"jobId": API_JOB_ID})), FakeLambdaContext())
    assert answer == {"batchItemFailures": []}  # this message is done; its receive count never grows
    assert queue.sent_again == [(QUEUE_ARN, API_JOB_ID, 17)]
    assert queue.deferred == []


def test_capacity_delays_are_jittered_around_the_setting() -> None:
    assert capacity_delay_seconds(20, lambda low, high: low) == 10
    assert capacity_delay_seconds(20, lambda low, high: high) == 30
    assert capacity_delay_seconds(1, lambda low, high: low) == 1  # never 0: SQS would hand it straight back


def test_a_member_whose_definition_changes_starts_afresh_and_the_others_keep_their_state() -> None:
    harness = Harness(pool_json({"name": "a", "apiKey": "sk-old"}, {"name": "b"}))
    harness.pool.members()
    harness.clients["a"].script = [KEY_REFUSED]
    harness.clients["b"].script = [FULL]
    harness.pool.submit_swap(REQUEST)
    assert (harness.pool.member_state("a")["benched"], harness.pool.member_state("b")["full"]) == (True, True)
    harness.secret = pool_json({"name": "a", "apiKey": "sk-fixed"}, {"name": "b"})  # the key put right
    assert harness.pool.has_capacity() is True
    assert (harness.pool.member_state("a")["benched"], harness.pool.member_state("b")["full"]) == (False, True)
    assert harness.pool.submit_swap(REQUEST).member == "a"


# --- the state machine's part ------------------------------------------------------------------


def test_record_capacity_wait_gives_the_attempt_back_only_on_a_pending_job(world: World) -> None:
    now = world.clock()
    taken = sm.start_attempt(make_job(attempts=2, submitInDoubt=True), now, int(now.timestamp()) + 60).job
    waited = sm.record_capacity_wait(taken, now, "every upstream member is full (a: full)").job
    assert (waited.attempts, waited.leaseUntil, waited.submitInDoubt) == (2, None, False)
    assert waited.lastError == "every upstream member is full (a: full)"
    submitted = make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1)
    assert sm.record_capacity_wait(submitted, now, "full").changed is False


def test_the_member_is_recorded_whoever_records_the_task_first(world: World) -> None:
    now = world.clock()
    by_callback = sm.apply_snapshot(make_job(attempts=1), now, snap("SUBMITTED", state=None)).job
    assert (by_callback.taskId, by_callback.upstreamMember, by_callback.submittedAt) == (TASK_ID, None, iso(now))
    later = world.clock() + timedelta(seconds=3)
    accepted = sm.record_accepted(by_callback, later, TASK_ID, None, member="relay-b").job
    assert (accepted.upstreamMember, accepted.submittedAt) == ("relay-b", iso(now))  # the first time is kept


def test_a_lost_answer_records_its_member_even_on_the_last_attempt(world: World) -> None:
    now = world.clock()
    job = make_job(attempts=3)
    failed = sm.record_retryable_failure(job, now, "no answer", 3, maybe_accepted=True, member="relay-c").job
    assert (failed.status, failed.upstreamMember) == (JobStatus.FAILURE, "relay-c")
    kept = sm.record_retryable_failure(make_job(attempts=1, upstreamMember="relay-a"), now, "HTTP 502", 3, member="b")
    assert kept.job.upstreamMember == "relay-a"  # a failure that created nothing moves nothing


class RecordingSqs:
    def __init__(self, failed: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.failed = failed

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        return {"QueueUrl": f"https://sqs.example/{QueueOwnerAWSAccountId}/{QueueName}"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(Entries)
        return {"Failed": [{"Id": e["Id"]} for e in Entries[: self.failed]]}


def test_jobs_are_sent_again_ten_a_call_with_their_delays_capped_at_sqs_limit() -> None:
    sqs = RecordingSqs()
    waits = [(f"job-{i}", 20 + i) for i in range(11)] + [("job-late", 5000)]
    SubmitQueue(sqs).send_again(QUEUE_ARN, waits)
    assert [len(batch) for batch in sqs.batches] == [10, 2]
    sent = [entry for batch in sqs.batches for entry in batch]
    assert [json.loads(e["MessageBody"]) for e in sent] == [{"jobId": job_id} for job_id, _ in waits]
    assert [e["DelaySeconds"] for e in sent] == [*(20 + i for i in range(11)), 900]


def test_a_message_sqs_did_not_take_is_an_error_so_the_received_one_comes_back() -> None:
    with pytest.raises(RuntimeError, match="SQS did not take 1 of 1 messages sent again"):
        SubmitQueue(RecordingSqs(failed=1)).send_again(QUEUE_ARN, [("job-1", 20)])


def test_an_invalid_pool_fails_the_delivery_before_the_job_is_touched(ready: World) -> None:
    harness = Harness(json.dumps({"apiKey": KEY, "members": [{"name": "a", "running": 0}]}))
    item = upload(TARGET_KEY)
    ready.gateway.script(Retryable("every upstream member is full (x: full)", capacity=True))
    ready.submitter().submit(item, LEASE)  # the job exists, waiting
    before = store_calls(ready)
    submitter = ready.submitter(upstream=harness.pool)
    with pytest.raises(PoolConfigError, match=r"members\[0\]\.running") as raised:
        submitter.submit_job(item.job_id, LEASE)
    assert KEY not in str(raised.value)
    assert store_calls(ready) == before  # the message comes back; the job is as it was


# --- hostile secrets: deep, huge, control characters ---------------------------------------------


def test_a_secret_nested_too_deeply_is_refused_clearly() -> None:
    def nested(depth: int) -> str:
        return '{"members": ' + "[" * depth + "]" * depth + "}"

    assert "members[0]: Input should be a valid dictionary" in _error(nested(2_000))  # parsed, then refused
    assert "nested too deeply" in _error(nested(30_000))  # within Secrets Manager's size: a RecursionError in json
    assert "Secrets Manager holds at most" in _error(nested(200_000))  # longer: refused before parsing


def test_a_secret_longer_than_secrets_manager_holds_is_refused_before_parsing() -> None:
    huge = json.dumps({"apiKey": KEY, "members": [MEMBER_OK], "pad": "x" * 70_000})
    message = _error(huge)
    assert "Secrets Manager holds at most 65,536" in message and KEY not in message
    assert "Secrets Manager holds at most" in _error("k" * 70_000)  # a plain key as well


@pytest.mark.parametrize("injected", ["\n", "\r\n", "\x00", "\x1b[2J", "\x7f", "\t"])
def test_a_key_with_a_control_character_is_refused_without_being_shown(injected: str) -> None:
    poisoned = f"sk-live{injected}X-Injected: 1"
    for secret, where in (
        (poisoned, "the upstream API key in the secret holds a control character"),
        (json.dumps({"apiKey": poisoned, "members": [{"name": "m1"}]}), "apiKey: holds a control character"),
        (json.dumps({"members": [{"name": "m1", "apiKey": poisoned}]}), "members[0].apiKey: holds a control"),
        (json.dumps({"apiKey": KEY, "members": [{"name": "m1", "instanceId": f"1{injected}2"}]}), "instanceId"),
    ):
        message = _error(secret)
        assert where in message
        assert "sk-live" not in message and KEY not in message


def test_a_key_with_edge_whitespace_only_is_still_accepted() -> None:
    (member,) = parse_pool(f"  {KEY}\n", BASE, AuthStyle.BEARER).members
    assert member.api_key == KEY
    pool = parse_pool(
        json.dumps({"members": [{"name": "m1", "apiKey": KEY, "instanceId": " 17 "}]}), BASE, AuthStyle.BEARER
    )
    assert pool.members[0].instance_id == "17"
