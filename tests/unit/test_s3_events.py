"""s3_events: S3 notifications (as S3 and S3-compatible emulators send them) → Uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swapdrop.s3_events import (
    JobMessage,
    Malformed,
    S3TestEvent,
    S3Uploads,
    is_test_event,
    parse_message_body,
    read_message,
    uploads_from_s3_event,
)

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


# --- one SubmitQueue message body -----------------------------------------------------------------

JOB_ID = "0f8e1c2d3b4a59687766554433221100"


def test_a_job_message_names_its_job() -> None:
    assert read_message(json.dumps({"jobId": JOB_ID})) == JobMessage(JOB_ID)


def test_s3_events_and_the_test_event_are_read_as_before() -> None:
    message = read_message(json.dumps(minimal("uploads/" + JOB_ID + "/target.png", sequencer="0001")))
    assert isinstance(message, S3Uploads)
    (item,) = message.uploads
    assert (item.key, item.sequencer) == (f"uploads/{JOB_ID}/target.png", "0001")
    assert read_message('{"Service": "Amazon S3", "Event": "s3:TestEvent"}') == S3TestEvent()


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        ("not json", "not JSON (8 characters)"),
        ("[1, 2]", "JSON array, not an object"),
        ('"jobId"', "JSON string, not an object"),
        ("null", "JSON null, not an object"),
        ("[" * 100_000, "JSON nested too deeply (100000 characters)"),
        ('{"jobId": "' + JOB_ID.upper() + '"}', 'a job message that is not exactly {"jobId": <32 lowercase hex>}'),
        ('{"jobId": "' + JOB_ID[:-1] + '"}', "a job message that is not exactly"),
        ('{"jobId": 123}', "object {jobId: number}"),
        ('{"jobId": "' + JOB_ID + '", "face": "alice"}', "object {face: string, jobId: string}"),
        (json.dumps({"jobId": "../../etc\x1b[0m"}), "object {jobId: string}"),
        ('{"Records": "nope"}', "an S3 event that does not parse (Records invalid): object {Records: string}"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "an S3 event that does not parse (Records.0.eventTime"),
        (
            json.dumps({"hello": 1, "\x1b[31mred": True}),
            "neither an S3 event nor a job message: object {\\x1b[31mred: boolean, hello: number}",
        ),
    ],
)
def test_anything_else_is_malformed_described_by_its_shape_only(body: str, shape: str) -> None:
    message = read_message(body)
    assert isinstance(message, Malformed)
    assert shape in message.shape
    assert "etc" not in message.shape and "alice" not in message.shape  # values never shown


def test_a_malformed_shape_lists_at_most_ten_keys() -> None:
    message = read_message(json.dumps({f"k{i:02d}": i for i in range(25)}))
    assert isinstance(message, Malformed)
    assert message.shape.endswith("k09: number, … 15 more}")
