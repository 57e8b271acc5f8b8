"""Fuzzing the upstream's snapshots (hypothesis): any JSON gives a TaskSnapshot or a refusal.

Values come two ways: as Python values (huge ints, ±inf, NaN, deep nesting) handed to the
parser, and as JSON text with the tokens the standard library accepts but cannot always
convert (1e400, Infinity, NaN, 5,000-digit integers), read by the same loader the callback
and the poller use. list_tasks is fuzzed over a fake session: it answers snapshots, or raises
UpstreamError for a whole answer it cannot read, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from fakes import RecordingAdapter, Reply, session_with
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swapdrop import lenient_json
from swapdrop.config import AuthStyle
from swapdrop.task_snapshot import SnapshotRefusal, TaskSnapshot, UpstreamStatus, parse_snapshot
from swapdrop.upstream import UpstreamClient, UpstreamError

FIELDS = [
    "id",
    "status",
    "action",
    "state",
    "progress",
    "imageUrl",
    "failReason",
    "description",
    "submitTime",
    "startTime",
    "finishTime",
    "properties",
]
STATUSES = [s.value for s in UpstreamStatus]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from([*STATUSES, "45%", "150%", "-5%", "", " ", "1729072764329123", chr(0xD800)]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
snapshot_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS))

# JSON text, including number tokens a parser may choke on.
NUMBER_TOKENS = ["1e400", "-1e400", "Infinity", "-Infinity", "NaN", "9" * 5000, "-" + "9" * 5000, "0.5", "100"]
json_text = st.recursive(
    st.one_of(
        st.sampled_from([*NUMBER_TOKENS, "null", "true", "false", '""', '"45%"', '"SUCCESS"', '"\\ud800"']),
        st.text(max_size=20).map(json.dumps),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(st.sampled_from([*FIELDS, "x"]), inner, max_size=6).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=25,
)
snapshot_text = st.dictionaries(st.sampled_from(FIELDS), json_text, max_size=len(FIELDS)).map(
    lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: object) -> None:
    assert isinstance(result, TaskSnapshot | SnapshotRefusal)
    if isinstance(result, TaskSnapshot):
        assert 0 <= result.progress <= 100
        assert result.id and len(result.id) <= 128
        for text in (result.id, result.state, result.failReason, result.imageUrl, result.description):
            if text is not None:
                text.encode("utf-8")  # storable in DynamoDB
    else:
        assert result.reason and result.errors


@FUZZ
@given(st.one_of(json_values, snapshot_like))
def test_any_value_gives_a_snapshot_or_a_refusal(value: Any) -> None:
    check(parse_snapshot(value))


@FUZZ
@given(st.one_of(json_text, snapshot_text))
def test_any_json_text_gives_a_snapshot_or_a_refusal(text: str) -> None:
    check(parse_snapshot(lenient_json.loads(text)))


@FUZZ
@given(st.fixed_dictionaries({"id": st.just("1729072764329123"), "status": st.sampled_from(STATUSES)}), snapshot_like)
def test_a_usable_id_and_status_always_give_a_snapshot(core: dict[str, Any], rest: dict[str, Any]) -> None:
    """Whatever else a snapshot carries, a usable id and status are enough for it to apply."""
    result = parse_snapshot(rest | core)
    assert isinstance(result, TaskSnapshot)
    assert result.status.value == core["status"]


def poller(answer: bytes) -> UpstreamClient:
    adapter = RecordingAdapter(lambda _: Reply(200, answer))
    return UpstreamClient("https://relay.example", lambda: "K", AuthStyle.BEARER, 30, session=session_with(adapter))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        json_text, st.lists(st.one_of(snapshot_text, json_text), max_size=6).map(lambda i: "[" + ",".join(i) + "]")
    )
)
def test_list_tasks_answers_snapshots_or_an_upstream_error(text: str) -> None:
    client = poller(text.encode())
    try:
        snapshots = client.list_tasks(["1729072764329123"])
    except UpstreamError as error:
        assert "list-by-condition" in str(error)
    else:
        for snapshot in snapshots:
            check(snapshot)
    try:
        recent = client.recent_tasks()
    except UpstreamError as error:
        assert "/mj/task/list" in str(error)
    else:
        assert recent is not None
        for snapshot in recent:
            check(snapshot)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_list_tasks_over_any_bytes(answer: bytes) -> None:
    with contextlib.suppress(UpstreamError):
        poller(answer).list_tasks(["1"])


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_nesting_is_refused_by_the_loader_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(lenient_json.JsonRefused, match="nests deeper than 64 levels"):
        lenient_json.loads("[" * depth + "]" * depth, "body")
