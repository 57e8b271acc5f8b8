"""Hostile and foreign-form inbox keys through the Submitter (issue 6, item 5): refused before
anything is sent, faces found across Unicode forms, and keys escaped in every log line."""

from __future__ import annotations

import io
import logging
import unicodedata
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from swapdrop.jobs import JobStatus
from swapdrop.observability import logger
from swapdrop.submission import Outcome
from swapdrop.upstream import Accepted

from .builders import TASK_ID, upload
from .conftest import World

LEASE = 900
NFC_RENEE = unicodedata.normalize("NFC", "Renée")
NFD_RENEE = unicodedata.normalize("NFD", "Renée")
# raw characters a terminal or a reader would act on; none may reach a log line or a job record
RAW_CONTROLS = ("\x1b", "\x07", "\x7f", "\x9b", "\u202e")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    lines = io.StringIO()
    previous = handler.setStream(lines)
    try:
        yield lines
    finally:
        handler.setStream(previous)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("inbox/hostile/../../faces/hostile.png", "'..' path segment"),
        ("inbox/w/../../../escaped.png", "'..' path segment"),
        ("inbox/w/./x.png", "'.' path segment"),
        ("inbox/w//x.png", "empty folder name"),
        ("inbox/w/\x1b[2J\x1b[31mred\x07\x7f\x9b.png", "control or text-direction character '\\x1b'"),
        ("inbox/w/invoice\u202egnp.jpg", "control or text-direction character '\\u202e'"),
        ("inbox/w/a\\b.png", "backslash"),
        ("inbox/w/" + "x" * 1100 + ".png", "over S3's limit of 1,024 bytes"),
    ],
)
def test_hostile_keys_end_rejected_with_a_reason_and_are_never_sent(
    world: World, images: SimpleNamespace, log_lines: io.StringIO, key: str, reason: str
) -> None:
    world.media.put("faces/w.jpg", images.jpeg)
    world.media.put("faces/hostile.jpg", images.jpeg)
    world.media.put(key, images.png)
    world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    item = upload(key)

    result = world.submitter().submit(item, LEASE)

    assert result.outcome is Outcome.REJECTED
    assert reason in result.detail
    assert world.gateway.requests == []
    job = world.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.REJECTED and job.resultKey is None
    logged = log_lines.getvalue()
    assert "job created" in logged and "job rejected" in logged
    for raw in RAW_CONTROLS:
        assert raw not in logged
        assert raw not in (job.failReason or "")


@pytest.mark.parametrize(("folder", "saved"), [(NFD_RENEE, NFC_RENEE), (NFC_RENEE, NFD_RENEE)])
def test_a_face_folder_matches_its_face_in_the_other_unicode_form(
    world: World, images: SimpleNamespace, folder: str, saved: str
) -> None:
    world.media.put(f"faces/{saved}.jpg", images.jpeg)
    key = f"inbox/{folder}/plage.png"
    world.media.put(key, images.png)
    world.gateway.script(Accepted(TASK_ID, None, 1, ""))

    result = world.submitter().submit(upload(key), LEASE)

    assert result.outcome is Outcome.SUBMITTED, result.detail
    job = world.jobs.get(result.job_id)
    assert job is not None and job.sourceKey == f"faces/{saved}.jpg"


def test_one_face_saved_in_both_unicode_forms_is_ambiguous(world: World, images: SimpleNamespace) -> None:
    world.media.put(f"faces/{NFC_RENEE}.jpg", images.jpeg)
    world.media.put(f"faces/{NFD_RENEE}.jpg", images.jpeg_other)
    key = f"inbox/{NFD_RENEE}/plage.png"
    world.media.put(key, images.png)

    result = world.submitter().submit(upload(key), LEASE)

    assert result.outcome is Outcome.REJECTED
    assert f"face '{NFD_RENEE}' is ambiguous" in result.detail
    assert "NFC" in result.detail and "NFD" in result.detail
    assert world.gateway.requests == []
