"""s3_events: S3 notifications (as S3 and S3-compatible emulators send them) → Uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swapdrop.s3_events import is_test_event, parse_message_body, uploads_from_s3_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def minimal(key: str, etag: str = "e1", time: str = "2024-10-16T09:59:21.874Z", **obj: object) -> dict:
    """Only what an emulator is sure to send: no userIdentity, no sequencer, no versionId."""
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": time,
                "s3": {"bucket": {"name": "bkt"}, "object": {"key": key, "size": 10, "eTag": etag, **obj}},
            }
        ]
    }


def test_the_recorded_s3_event() -> None:
    (item,) = uploads_from_s3_event(json.loads((EVENTS / "s3-put.json").read_text()))
    assert item.key == "inbox/alice/summer trip/café + friends.jpg"
    assert item.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_a_minimal_event_is_accepted_and_still_names_one_job() -> None:
    (first,) = uploads_from_s3_event(minimal("inbox/alice/a+b.jpg"))
    (again,) = uploads_from_s3_event(minimal("inbox/alice/a+b.jpg"))
    (other,) = uploads_from_s3_event(minimal("inbox/alice/a+b.jpg", etag="e2"))
    (later,) = uploads_from_s3_event(minimal("inbox/alice/a+b.jpg", time="2024-10-16T10:30:00.000Z"))
    assert first.key == "inbox/alice/a b.jpg"
    assert first.job_id == again.job_id
    assert len({first.job_id, other.job_id, later.job_id}) == 3


def test_the_event_time_orders_uploads_of_one_key_as_sortable_utc_text() -> None:
    (earlier,) = uploads_from_s3_event(minimal("inbox/alice/x.jpg", time="2024-10-16T09:59:21Z"))
    (later,) = uploads_from_s3_event(minimal("inbox/alice/x.jpg", time="2024-10-16T11:59:21.5+02:00"))
    assert earlier.event_time == "2024-10-16T09:59:21.000Z"
    assert later.event_time == "2024-10-16T09:59:21.500Z"
    assert later.event_time > earlier.event_time  # an offset or missing fraction never misorders


def test_sequencer_names_the_job_when_there_is_no_version() -> None:
    (a,) = uploads_from_s3_event(minimal("inbox/alice/x.jpg", sequencer="0001"))
    (b,) = uploads_from_s3_event(minimal("inbox/alice/x.jpg", etag="other", sequencer="0001"))
    assert a.job_id == b.job_id


def test_test_events_and_message_bodies() -> None:
    assert is_test_event({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    assert not is_test_event(minimal("inbox/a/b.jpg"))
    assert parse_message_body('{"Records": []}') == {"Records": []}
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_message_body("[1, 2]")
    with pytest.raises(ValueError):
        parse_message_body("not json")
