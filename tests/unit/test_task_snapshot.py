"""task_snapshot: every shape of snapshot the implementations send, and the ones to refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from swapdrop import lenient_json
from swapdrop.task_snapshot import MAX_TEXT, SnapshotRefusal, TaskSnapshot, UpstreamStatus, parse_snapshot


def parse(**fields: Any) -> TaskSnapshot:
    return TaskSnapshot.model_validate({"id": "1729072764329123", "status": "IN_PROGRESS", **fields})


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        ("45%", 45),
        ("45", 45),
        (45, 45),
        ("", 0),
        (None, 0),
        ("100%", 100),
        ("0%", 0),
        (" 7 % ", 7),
        ("45.5%", 45),
        (45.9, 45),
    ],
)
def test_progress_shapes(progress: Any, expected: int) -> None:
    assert parse(progress=progress).progress == expected


def test_progress_absent_is_zero() -> None:
    assert parse().progress == 0


@pytest.mark.parametrize(
    ("progress", "expected"),
    [("150%", 100), ("101", 100), (101, 100), (10**400, 100), (1e300, 100), (-1, 0), ("-5%", 0), (-1e300, 0)],
)
def test_out_of_range_progress_is_clamped_and_counted(
    progress: Any, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "IN_PROGRESS", "progress": progress})
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.progress == expected
    assert emitted(capsys) == [("UpstreamValuesClamped", "progress")]


@pytest.mark.parametrize(
    "raw",
    [
        "1e400",
        "-1e400",
        "Infinity",
        "-Infinity",
        "NaN",
        '"abc"',
        '"45%%"',
        "true",
        "[45]",
        '{"v": 45}',
        '"' + "9" * 80 + '"',
    ],
)
def test_unreadable_progress_is_ignored_and_counted(raw: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The reported failure: `"progress": 1e400` raised OverflowError out of the parser."""
    body = lenient_json.loads(
        f'{{"id": "1729072764329123", "status": "SUCCESS", "imageUrl": "https://c/r.png", "progress": {raw}}}'
    )
    snapshot = parse_snapshot(body)
    assert isinstance(snapshot, TaskSnapshot)  # the snapshot still applies
    assert snapshot.status is UpstreamStatus.SUCCESS and snapshot.progress == 0
    assert emitted(capsys) == [("UpstreamValuesIgnored", "progress")]


def test_model_validate_never_overflows_on_progress() -> None:
    for value in (float("inf"), float("-inf"), float("nan")):
        assert parse(progress=value).progress == 0


def emitted(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    """(metric, field) of every EMF line printed since the last call."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            (metric,) = blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            found.append((metric["Name"], blob["Field"]))
    return found


def test_unknown_fields_are_ignored() -> None:
    snapshot = parse(
        botType="INSIGHT_FACE",
        instanceId="1286541563528380416",
        imageUrls=[{"url": "https://x"}],
        buttons=[],
        useTime=14301,
        isReplicate=False,
    )
    assert snapshot.status is UpstreamStatus.IN_PROGRESS
    assert not hasattr(snapshot, "botType")


def test_numeric_task_id_becomes_text() -> None:
    assert parse(id=1729072764329123).id == "1729072764329123"


@pytest.mark.parametrize("field", ["imageUrl", "failReason", "description", "state"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_text_fields_are_none(field: str, blank: str) -> None:
    assert getattr(parse(**{field: blank}), field) is None


def test_image_url_is_kept() -> None:
    assert parse(imageUrl="https://cdn.example/a.png").imageUrl == "https://cdn.example/a.png"


@pytest.mark.parametrize("status", ["DONE", "success", "", None])
def test_unknown_status_is_refused(status: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        parse(status=status)
    assert raised.value.errors()[0]["loc"] == ("status",)


@pytest.mark.parametrize("missing", ["id", "status"])
def test_id_and_status_are_required(missing: str) -> None:
    body = {"id": "1", "status": "SUCCESS"}
    del body[missing]
    with pytest.raises(ValidationError):
        TaskSnapshot.model_validate(body)


def test_every_upstream_status_parses() -> None:
    for status in ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE", "SUCCESS", "CANCEL"):
        assert parse(status=status).status.value == status


# --- per field: refused, clamped or ignored (never an exception) --------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"status": "SUCCESS"}, "id: Field required"),
        ({"id": "", "status": "SUCCESS"}, "id: Value error, id is empty"),
        ({"id": "   ", "status": "SUCCESS"}, "id is empty"),
        ({"id": 1.5, "status": "SUCCESS"}, "id must be text or a whole number, not a number"),
        ({"id": ["1"], "status": "SUCCESS"}, "not a list"),
        ({"id": True, "status": "SUCCESS"}, "not a boolean"),
        ({"id": "x" * 129, "status": "SUCCESS"}, "longer than 128 characters"),
        ({"id": 10**200, "status": "SUCCESS"}, "more than 128 digits"),
        ({"id": "1\ud800", "status": "SUCCESS"}, "not valid Unicode text"),
        ({"id": "1"}, "status: Field required"),
        ({"id": "1", "status": "DONE"}, "status: Input should be"),
        ({"id": "1", "status": 1}, "status: Input should be"),
    ],
)
def test_no_usable_id_or_status_is_a_refusal(body: dict[str, Any], fragment: str) -> None:
    refused = parse_snapshot(body)
    assert isinstance(refused, SnapshotRefusal)
    assert refused.reason.startswith("not a task snapshot: ")
    assert any(fragment in line for line in refused.errors), refused.errors


@pytest.mark.parametrize("value", [[], "text", 3, None, 1e400])
def test_a_non_object_is_a_refusal(value: Any) -> None:
    refused = parse_snapshot(value)
    assert isinstance(refused, SnapshotRefusal)
    assert refused.reason.startswith("a task snapshot is a JSON object, not ")


def test_a_megabyte_fail_reason_is_truncated_not_refused(capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "FAILURE", "failReason": "执" * 1_000_000})
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.failReason is not None and len(snapshot.failReason) == MAX_TEXT
    assert snapshot.failReason.endswith("…")
    assert emitted(capsys) == [("UpstreamValuesClamped", "failReason")]


def test_a_long_state_or_action_is_truncated() -> None:
    snapshot = parse_snapshot({"id": "1", "status": "SUBMITTED", "state": "s" * 1000, "action": "A" * 100})
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.state is not None and len(snapshot.state) == 256
    assert snapshot.action is not None and len(snapshot.action) == 64


def test_an_over_long_image_url_is_ignored_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "SUCCESS", "imageUrl": "https://c/" + "a" * MAX_TEXT})
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.imageUrl is None
    assert emitted(capsys) == [("UpstreamValuesIgnored", "imageUrl")]


@pytest.mark.parametrize("field", ["imageUrl", "failReason", "description", "state", "action"])
@pytest.mark.parametrize("value", [42, 1e400, ["x"], {"a": 1}, True])
def test_text_fields_of_another_type_are_ignored(field: str, value: Any, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "FAILURE", field: value})
    assert isinstance(snapshot, TaskSnapshot)
    assert getattr(snapshot, field) is None
    assert emitted(capsys) == [("UpstreamValuesIgnored", field)]


def test_lone_surrogates_in_text_are_replaced() -> None:
    snapshot = parse_snapshot(lenient_json.loads('{"id": "1", "status": "FAILURE", "failReason": "bad \\ud800 text"}'))
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.failReason == "bad ? text"
    snapshot.failReason.encode("utf-8")  # storable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1729072764329, 1729072764329),
        ("1729072764329", 1729072764329),
        (1729072764329.7, 1729072764329),
        (None, None),
        ("", None),
        (-1, None),
        (10**30, None),
        (float("inf"), None),
        (float("nan"), None),
        ("soon", None),
        (True, None),
        ([1], None),
    ],
)
def test_times_are_epoch_milliseconds_or_ignored(value: Any, expected: int | None) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "SUBMITTED", "submitTime": value, "finishTime": value})
    assert isinstance(snapshot, TaskSnapshot)
    assert snapshot.submitTime == snapshot.finishTime == expected


@pytest.mark.parametrize("value", [[], "x", 3, 1e400])
def test_properties_that_are_not_an_object_are_ignored(value: Any) -> None:
    snapshot = parse_snapshot({"id": "1", "status": "SUBMITTED", "properties": value})
    assert isinstance(snapshot, TaskSnapshot) and snapshot.properties is None


def test_a_clean_snapshot_counts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = parse_snapshot(
        {"id": "1", "status": "SUCCESS", "progress": "100%", "imageUrl": "https://c/r.png", "submitTime": 1}
    )
    assert isinstance(snapshot, TaskSnapshot)
    assert emitted(capsys) == []
