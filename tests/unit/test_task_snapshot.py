"""task_snapshot: every shape of snapshot the implementations send, and the ones to refuse."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from swapdrop.task_snapshot import TaskSnapshot, UpstreamStatus


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


@pytest.mark.parametrize("progress", ["150%", "101", 101, -1, "abc", "45%%", True, "1000"])
def test_invalid_progress_is_refused(progress: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        parse(progress=progress)
    assert raised.value.errors()[0]["loc"] == ("progress",)


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
