"""The submit path of jobs-API jobs (issue 7): one job id, one submit path.

A job the API made is driven by id ({"jobId"} messages, or the S3 event of its upload form),
from its record only; URL targets are fetched first with the result downloader's rules; a
cancel that lands while the swap is in flight stops the new task upstream. The last test
drives a drop-folder job and an API job through the same Submitter and compares the records.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import FakePools, Reply
from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.layout import api_result_base, input_key, upload_key
from swapdrop.observability import logger, metrics
from swapdrop.result_download import DownloadedImage, DownloadRefused, ResultDownloader
from swapdrop.submission import Outcome, Submitter, Upload
from swapdrop.upstream import Accepted, Retryable, SwapImage, UpstreamError
from swapdrop.url_rules import shown_url

from .builders import BUCKET, CALLBACK_BASE, CALLBACK_SECRET, TASK_ID, snap
from .conftest import World

LEASE = 900
JOB_ID = "0f8e1c2d3b4a59687766554433221100"
UPLOAD_KEY = upload_key(JOB_ID, "image/png")
PHOTO_URL = "https://img.example/p/cat.png"
SECRET_QUERY = "X-Amz-Signature=5f2b9c-SECRET-QUERY&token=hunter2"


@pytest.fixture
def api(world: World, images: SimpleNamespace) -> World:
    world.media.put("faces/alice.jpg", images.jpeg)
    return world


def submitter(world: World, source: Any = None) -> Submitter:
    return world.submitter(target_source=source if source is not None else world.downloader)


def api_job(world: World, job_id: str = JOB_ID, **overrides: Any) -> Job:
    """A job as POST /jobs writes it (target.s3Key by default: PENDING, then {"jobId"} is queued)."""
    stamp = iso(world.clock())
    values: dict[str, Any] = {
        "jobId": job_id,
        "status": JobStatus.PENDING,
        "bucket": BUCKET,
        "targetKey": "photos/beach.png",
        "face": "alice",
        "origin": "api",
        "resultBase": api_result_base("alice", job_id),
        "requestedBy": "arn:aws:iam::123456789012:user/ops",
        "requesterKind": "iam",
        "metadata": {"order": "A-17"},
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    job = Job(**(values | overrides))
    world.jobs.create(job)
    return job


def awaiting_upload(world: World, job_id: str = JOB_ID, content_type: str = "image/png") -> Job:
    expires = iso(world.clock() + timedelta(seconds=900))
    return api_job(
        world,
        job_id,
        status=JobStatus.AWAITING_UPLOAD,
        targetKey=upload_key(job_id, content_type),
        uploadExpiresAt=expires,
    )


def the_upload(sequencer: str = "0001", version_id: str | None = "v1", key: str = UPLOAD_KEY) -> Upload:
    return Upload(BUCKET, key, sequencer, version_id, event_time="2024-10-16T10:00:00.000Z")


def metric(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


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


# --- {"jobId"}: a job the API made, driven from its record -------------------------------------


def test_an_s3_key_job_is_submitted_from_its_record(api: World, images: SimpleNamespace) -> None:
    api.media.put("photos/beach.png", images.png, version_id="v1")
    api.media.put("photos/beach.png", images.webp, version_id="v2")  # written since POST /jobs
    api_job(api, targetVersionId="v1")
    api.gateway.script(Accepted(TASK_ID, 3, 22, ""))

    result = submitter(api).submit_job(JOB_ID, LEASE)

    assert (result.job_id, result.outcome, result.detail) == (JOB_ID, Outcome.SUBMITTED, TASK_ID)
    (request,) = api.gateway.requests
    assert request.source == SwapImage(images.jpeg, "image/jpeg")
    assert request.target == SwapImage(images.png, "image/png")  # the version HeadObject saw
    assert request.state == JOB_ID
    assert request.notify_hook == f"{CALLBACK_BASE}/{JOB_ID}?token={token_for(CALLBACK_SECRET, JOB_ID)}"
    job = api.jobs.get(JOB_ID)
    assert job is not None
    assert (job.status, job.taskId, job.queuePosition, job.sourceKey) == (
        JobStatus.SUBMITTED,
        TASK_ID,
        3,
        "faces/alice.jpg",
    )
    assert (job.origin, job.metadata, job.resultBase) == ("api", {"order": "A-17"}, "results/alice/jobs/" + JOB_ID)


def test_a_second_job_message_submits_nothing_more(api: World, images: SimpleNamespace) -> None:
    api.media.put("photos/beach.png", images.png)
    api_job(api)
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))
    first = submitter(api).submit_job(JOB_ID, LEASE)
    again = submitter(api).submit_job(JOB_ID, LEASE)
    assert (first.outcome, again.outcome, again.detail) == (
        Outcome.SUBMITTED,
        Outcome.DUPLICATE,
        "job is already SUBMITTED",
    )
    assert len(api.gateway.requests) == 1


def test_a_job_message_for_an_unknown_id_is_dropped(api: World) -> None:
    result = submitter(api).submit_job(JOB_ID, LEASE)
    assert (result.outcome, result.detail) == (Outcome.DROPPED, "no job has this id")
    assert api.jobs.items == {} and api.jobs.writes == []
    assert api.gateway.requests == []
    assert metric("UnknownJobMessages") == [1.0]


def test_a_job_message_for_a_job_awaiting_its_upload_sends_nothing(api: World) -> None:
    awaiting_upload(api)
    result = submitter(api).submit_job(JOB_ID, LEASE)
    assert (result.outcome, result.detail) == (Outcome.DUPLICATE, "job is already AWAITING_UPLOAD")
    assert api.gateway.requests == []
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.AWAITING_UPLOAD and job.attempts == 0


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (lambda w, i: None, "no face named 'alice': upload faces/alice.jpg (or .jpeg, .png, .webp) first"),
        (
            lambda w, i: (w.media.put("faces/alice.jpg", i.jpeg), w.media.put("faces/alice.png", i.png)),
            "face 'alice' is ambiguous: faces/alice.jpg, faces/alice.png all exist; keep only one",
        ),
    ],
    ids=["missing", "ambiguous"],
)
def test_an_api_jobs_face_must_exist_once(world: World, images: SimpleNamespace, arrange, reason: str) -> None:
    world.media.put("photos/beach.png", images.png)
    arrange(world, images)
    api_job(world)
    result = submitter(world).submit_job(JOB_ID, LEASE)
    assert result.outcome is Outcome.REJECTED and reason in result.detail
    job = world.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.REJECTED and job.failReason == result.detail
    assert world.gateway.requests == []
    assert [j.status for j in world.events.published] == [JobStatus.REJECTED]


@pytest.mark.parametrize(
    ("face", "reason"),
    [(None, "the job names no face"), ("a/b", "face name 'a/b' contains '/'; a face name is one folder name")],
)
def test_an_api_job_without_a_usable_face_is_rejected(api: World, face: str | None, reason: str) -> None:
    api_job(api, face=face)
    result = submitter(api).submit_job(JOB_ID, LEASE)
    assert (result.outcome, result.detail) == (Outcome.REJECTED, reason)
    assert api.gateway.requests == []


def test_an_api_job_whose_target_object_is_gone_is_rejected(api: World) -> None:
    api_job(api, targetVersionId="deleted-since")
    result = submitter(api).submit_job(JOB_ID, LEASE)
    assert (result.outcome, result.detail) == (Outcome.REJECTED, "the target 'photos/beach.png' no longer exists")


# --- uploads/<jobId>/target.<ext>: bind, then the same path ---------------------------------------


def test_the_upload_binds_its_job_then_submits_it(api: World, images: SimpleNamespace) -> None:
    awaiting_upload(api)
    api.media.put(UPLOAD_KEY, images.png, version_id="v1")
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))

    result = submitter(api).submit(the_upload(), LEASE)

    assert (result.job_id, result.outcome) == (JOB_ID, Outcome.SUBMITTED)
    assert len(api.jobs.items) == 1, "the upload is the API's job, never a second one"
    job = api.jobs.get(JOB_ID)
    assert job is not None
    assert job.status is JobStatus.SUBMITTED
    assert (job.targetVersionId, job.targetSequencer, job.targetEventTime) == (
        "v1",
        "0001",
        "2024-10-16T10:00:00.000Z",
    )
    assert job.uploadExpiresAt is None
    assert [(t.from_, t.to, t.via) for t in job.history] == [
        ("AWAITING_UPLOAD", "PENDING", "upload"),
        ("PENDING", "SUBMITTED", "submit"),
    ]
    assert (UPLOAD_KEY, "v1") in api.media.reads
    assert metric("UploadsBound") == [1.0]


def test_a_reused_upload_form_does_not_start_the_job_twice(api: World, images: SimpleNamespace) -> None:
    awaiting_upload(api)
    api.media.put(UPLOAD_KEY, images.png, version_id="v1")
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))
    first = submitter(api).submit(the_upload("0001", "v1"), LEASE)
    api.media.put(UPLOAD_KEY, images.webp, version_id="v2")  # the same presigned POST, used again

    second = submitter(api).submit(the_upload("0002", "v2"), LEASE)

    assert first.outcome is Outcome.SUBMITTED
    assert second.outcome is Outcome.DROPPED
    assert second.detail == "job is already SUBMITTED; this upload is not the one the job was bound to"
    assert len(api.gateway.requests) == 1
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.targetVersionId == "v1" and job.attempts == 1
    assert metric("UploadsDropped") == [1.0]


def test_a_second_upload_while_the_first_waits_for_a_retry_is_dropped_and_the_first_goes_on(
    api: World, images: SimpleNamespace
) -> None:
    awaiting_upload(api)
    api.media.put(UPLOAD_KEY, images.png, version_id="v1")
    api.gateway.script(Retryable("HTTP 503"), Accepted(TASK_ID, None, 1, ""))
    assert submitter(api).submit(the_upload("0001", "v1"), LEASE).outcome is Outcome.RETRY_LATER
    api.media.put(UPLOAD_KEY, images.webp, version_id="v2")

    other = submitter(api).submit(the_upload("0002", "v2"), LEASE)
    redelivered = submitter(api).submit(the_upload("0001", "v1"), LEASE)  # the first event, after its backoff

    assert other.outcome is Outcome.DROPPED
    assert redelivered.outcome is Outcome.SUBMITTED
    assert [r.target.data for r in api.gateway.requests] == [images.png, images.png]
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.attempts == 2 and job.targetVersionId == "v1"


def test_a_bound_job_whose_submit_never_ran_is_submitted_by_the_redelivered_event(
    api: World, images: SimpleNamespace
) -> None:
    """The worker bound the upload and died: the same event, delivered again, carries on."""
    awaiting_upload(api)
    api.media.put(UPLOAD_KEY, images.png, version_id="v1")
    item = the_upload()
    update_job(
        api.jobs, JOB_ID, lambda j: sm.bind_upload(j, api.clock(), item.version_id, item.sequencer, item.event_time)
    )
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))
    assert submitter(api).submit(item, LEASE).outcome is Outcome.SUBMITTED
    assert len(api.gateway.requests) == 1


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (f"uploads/{JOB_ID}/target.gif", "not an upload key the jobs API hands out"),
        (f"uploads/{JOB_ID}/other.png", "not an upload key the jobs API hands out"),
        (f"uploads/{JOB_ID.upper()}/target.png", "not an upload key the jobs API hands out"),
        ("uploads/\x1b[31mevil/target.png", "not an upload key the jobs API hands out"),
        (upload_key("ab" * 16, "image/png"), "no job has this id"),
        (upload_key(JOB_ID, "image/jpeg"), "the job's upload form is for another key"),
    ],
    ids=["gif", "other-name", "upper-case-id", "escape", "unknown-job", "other-extension"],
)
def test_an_upload_that_names_no_awaiting_job_is_dropped(
    api: World, images: SimpleNamespace, key: str, why: str
) -> None:
    awaiting_upload(api)  # expects target.png
    api.media.put(key, images.png)
    writes = len(api.jobs.writes)
    result = submitter(api).submit(the_upload(key=key), LEASE)
    assert (result.outcome, result.detail) == (Outcome.DROPPED, why)
    assert len(api.jobs.writes) == writes, "nothing written, no job created"
    assert api.gateway.requests == []
    assert metric("UploadsDropped") == [1.0]


@pytest.mark.parametrize("how", ["cancelled", "expired"])
def test_an_upload_after_the_job_ended_starts_nothing(api: World, images: SimpleNamespace, how: str) -> None:
    awaiting_upload(api)
    if how == "cancelled":
        update_job(api.jobs, JOB_ID, lambda j: sm.cancel(j, api.clock(), "cancelled by the caller"))
    else:
        update_job(api.jobs, JOB_ID, lambda j: sm.expire_upload(j, api.clock(), "target never uploaded"))
    api.media.put(UPLOAD_KEY, images.png, version_id="v1")
    result = submitter(api).submit(the_upload(), LEASE)
    assert result.outcome is Outcome.DROPPED
    assert result.detail.startswith(f"job is already {'CANCELLED' if how == 'cancelled' else 'FAILURE'}")
    assert api.gateway.requests == []


# --- target.url: fetched into jobs/<jobId>/target, then the same path ------------------------------


def url_job(world: World, url: str = PHOTO_URL) -> Job:
    return api_job(world, targetKey=input_key(JOB_ID), targetUrl=url)


def test_a_url_target_is_fetched_into_the_bucket_then_submitted(api: World, images: SimpleNamespace) -> None:
    api.downloader.results[PHOTO_URL] = DownloadedImage(images.png, "png", "image/png")
    url_job(api)
    api.gateway.script(Retryable("HTTP 502"), Accepted(TASK_ID, None, 1, ""))

    first = submitter(api).submit_job(JOB_ID, LEASE)
    second = submitter(api).submit_job(JOB_ID, LEASE)

    assert (first.outcome, second.outcome) == (Outcome.RETRY_LATER, Outcome.SUBMITTED)
    assert api.downloader.calls == [PHOTO_URL], "fetched once; the retry reads the copy in the bucket"
    (written,) = api.media.writes
    assert (written.key, written.data, written.content_type, written.metadata) == (
        f"jobs/{JOB_ID}/target",
        images.png,
        "image/png",
        {"job-id": JOB_ID},
    )
    assert [r.target for r in api.gateway.requests] == [SwapImage(images.png, "image/png")] * 2
    assert metric("TargetsFetched") == [1.0]


URL_WITH_SECRETS = f"https://user:pa55word@img.example:8443/p/cat.png?{SECRET_QUERY}#frag"


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        ("the result URL answered HTTP 404", "the target URL answered HTTP 404"),
        (
            "the result host 'img.example' resolves to a disallowed address (10.0.0.7)",
            "the target host 'img.example' resolves to a disallowed address (10.0.0.7)",
        ),
        ("the result image is over the 100000-byte limit", "the target image is over the 100000-byte limit"),
        ("could not fetch the result image (ReadTimeout)", "could not fetch the target image (ReadTimeout)"),
        (
            "the result is a PDF document, not a JPEG, PNG or WebP image",
            "the target is a PDF document, not a JPEG, PNG or WebP image",
        ),
    ],
    ids=["404", "ssrf", "too-large", "timeout", "not-an-image"],
)
def test_a_url_that_cannot_be_fetched_rejects_the_job_naming_the_url_safely(
    api: World, log_lines: io.StringIO, refusal: str, reason: str
) -> None:
    api.downloader.results[URL_WITH_SECRETS] = DownloadRefused(refusal)
    url_job(api, URL_WITH_SECRETS)

    result = submitter(api).submit_job(JOB_ID, LEASE)

    expected = f"could not fetch the target from https://img.example:8443/p/cat.png: {reason}"
    assert (result.outcome, result.detail) == (Outcome.REJECTED, expected)
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.REJECTED and job.failReason == expected
    assert api.media.writes == [] and api.gateway.requests == []
    for secret in ("SECRET-QUERY", "hunter2", "pa55word", "frag"):
        assert secret not in job.failReason
        assert secret not in log_lines.getvalue()


def test_the_real_downloader_refuses_a_private_address_without_a_connection(api: World) -> None:
    adapter = FakePools([])
    downloader = ResultDownloader(
        max_bytes=api.policy.max_image_bytes, resolver=lambda host: ["169.254.169.254"], pools=adapter
    )
    url_job(api, "http://metadata.example/latest/meta-data/iam?x=1")
    result = submitter(api, downloader).submit_job(JOB_ID, LEASE)
    assert result.outcome is Outcome.REJECTED
    assert result.detail == (
        "could not fetch the target from http://metadata.example/latest/meta-data/iam: the target host "
        "'metadata.example' resolves to a disallowed address (169.254.169.254)"
    )
    assert adapter.requests == []


def test_the_real_downloader_caps_a_url_target_at_max_image_bytes(api: World, images: SimpleNamespace) -> None:
    big = images.png + b"\x00" * api.policy.max_image_bytes
    adapter = FakePools([Reply(200, big, {"Content-Type": "image/png"})])
    downloader = ResultDownloader(
        max_bytes=api.policy.max_image_bytes, resolver=lambda host: ["93.184.215.14"], pools=adapter
    )
    url_job(api)
    result = submitter(api, downloader).submit_job(JOB_ID, LEASE)
    assert result.outcome is Outcome.REJECTED
    assert result.detail.endswith(f"the target image is over the {api.policy.max_image_bytes}-byte limit")


def test_the_real_downloader_fetches_a_url_target(api: World, images: SimpleNamespace) -> None:
    adapter = FakePools([Reply(200, images.webp, {"Content-Type": "image/webp"})])
    downloader = ResultDownloader(
        max_bytes=api.policy.max_image_bytes, resolver=lambda host: ["93.184.215.14"], pools=adapter
    )
    url_job(api)
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))
    assert submitter(api, downloader).submit_job(JOB_ID, LEASE).outcome is Outcome.SUBMITTED
    assert [r.url for r in adapter.requests] == [PHOTO_URL]
    assert api.gateway.requests[0].target == SwapImage(images.webp, "image/webp")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL_WITH_SECRETS, "https://img.example:8443/p/cat.png"),
        ("http://[2001:db8::1]/a.png?sig=1", "http://[2001:db8::1]/a.png"),
        ("https://img.example/a\x1b[31m.png", "https://img.example/a\\x1b[31m.png"),
        ("https://img.example:99999/a.png", "(a malformed URL)"),
        ("https://img.example/" + "p" * 400, "https://img.example/" + "p" * 180 + "…"),
    ],
)
def test_shown_url_keeps_scheme_host_and_path_only(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_without_a_target_downloader_a_url_job_is_rejected_clearly(api: World) -> None:
    url_job(api)
    bare = api.submitter()
    result = bare.submit_job(JOB_ID, LEASE)
    assert (result.outcome, result.detail) == (
        Outcome.REJECTED,
        "this Swapdrop was set up without a downloader for URL targets",
    )


# --- a cancel that lands while the swap is in flight -------------------------------------------------


def _cancel_in_flight(world: World) -> None:
    world.gateway.during_submit = lambda _: update_job(
        world.jobs, JOB_ID, lambda j: sm.cancel(j, world.clock(), "cancelled by the caller")
    )


def test_a_task_accepted_for_a_job_cancelled_meanwhile_is_cancelled_upstream(
    api: World, images: SimpleNamespace
) -> None:
    api.media.put("photos/beach.png", images.png)
    api_job(api)
    _cancel_in_flight(api)
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))

    submitter(api).submit_job(JOB_ID, LEASE)

    assert api.gateway.cancelled == [TASK_ID]
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.CANCELLED and job.taskId is None
    assert metric("OrphanTasksCancelled") == [1.0]


@pytest.mark.parametrize("answer", [UpstreamError("POST /mj/task/x/cancel answered HTTP 500"), None])
def test_the_orphans_cancel_is_best_effort(api: World, images: SimpleNamespace, answer: Any) -> None:
    api.media.put("photos/beach.png", images.png)
    api_job(api)
    _cancel_in_flight(api)
    api.gateway.cancel_answer = answer
    api.gateway.script(Accepted(TASK_ID, None, 1, ""))
    result = submitter(api).submit_job(JOB_ID, LEASE)  # no exception reaches the batch
    assert result.outcome is Outcome.SUBMITTED and api.gateway.cancelled == [TASK_ID]
    assert metric("OrphanTasksCancelled") == []
    job = api.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.CANCELLED


def test_a_duplicate_task_of_a_live_job_is_not_cancelled(api: World, images: SimpleNamespace) -> None:
    """Only a cancelled job's task is stopped: a job that follows another task keeps both alone."""
    api.media.put("photos/beach.png", images.png)
    api_job(api)
    api.gateway.during_submit = lambda _: api.applier().apply(JOB_ID, snap("SUBMITTED", state=JOB_ID), via="callback")
    api.gateway.script(Accepted("9999999999999999", None, 1, ""))
    submitter(api).submit_job(JOB_ID, LEASE)
    assert api.gateway.cancelled == []


# --- one path from the upload on: a drop-folder job and an API job, side by side -----------------------

INBOX_KEY = "inbox/alice/trip/beach.png"
INBOX_TASK, API_TASK = "1729072764329001", "1729072764329002"
RESULT_URL = "https://cdn.example/r/{}.png"
BY_DESIGN = {
    # what each entrance sets (the API's own fields, the target's key and the event that named it)
    "jobId",
    "targetKey",
    "targetVersionId",
    "targetSequencer",
    "targetEventTime",
    "origin",
    "resultBase",
    "requestedBy",
    "requesterKind",
    "metadata",
    # what follows from those: the task the upstream gave each, the result's key and version
    "taskId",
    "imageUrl",
    "resultKey",
    "resultVersionId",
    # derived list-index keys (the shard follows the job id)
    "listSort",
    "listAll",
    "listStatus",
    "listFace",
}


@pytest.mark.parametrize("entrance", ["s3Key", "upload"])
def test_a_drop_folder_job_and_an_api_job_take_the_same_path(
    world: World, images: SimpleNamespace, entrance: str
) -> None:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(INBOX_KEY, images.png, version_id="i1")
    for task in (INBOX_TASK, API_TASK):
        world.downloader.results[RESULT_URL.format(task)] = DownloadedImage(images.webp, "webp", "image/webp")
    one = submitter(world)  # one Submitter, as one Lambda container has
    world.gateway.script(Accepted(INBOX_TASK, 2, 22, ""), Accepted(API_TASK, 2, 22, ""))

    inbox = Upload(BUCKET, INBOX_KEY, "0001", "i1", event_time="2024-10-16T10:00:00.000Z")
    inbox_result = one.submit(inbox, LEASE)
    if entrance == "s3Key":  # POST /jobs {target: {s3Key}}: PENDING, then {"jobId"} on the queue
        world.media.put("photos/beach.png", images.png, version_id="p1")
        api_job(world, targetVersionId="p1")
        api_result = one.submit_job(JOB_ID, LEASE)
    else:  # POST /jobs {target: {upload}}: AWAITING_UPLOAD, then the presigned POST's S3 event
        awaiting_upload(world)
        world.media.put(UPLOAD_KEY, images.png, version_id="u1")
        api_result = one.submit(the_upload(version_id="u1"), LEASE)
    assert (inbox_result.outcome, api_result.outcome) == (Outcome.SUBMITTED, Outcome.SUBMITTED)

    # the same swap was asked for, each with its own job id and token
    inbox_request, api_request = world.gateway.requests
    assert (inbox_request.source, inbox_request.target) == (api_request.source, api_request.target)
    assert api_request.notify_hook == inbox_request.notify_hook.replace(inbox.job_id, JOB_ID).replace(
        token_for(CALLBACK_SECRET, inbox.job_id), token_for(CALLBACK_SECRET, JOB_ID)
    )

    # then the same news reaches both, through the same door
    world.clock.advance(seconds=30)
    for job_id, task in ((inbox.job_id, INBOX_TASK), (JOB_ID, API_TASK)):
        world.applier().apply(job_id, snap("IN_PROGRESS", "40%", task_id=task, state=job_id), via="callback")
    world.clock.advance(seconds=30)
    for job_id, task in ((inbox.job_id, INBOX_TASK), (JOB_ID, API_TASK)):
        done = snap("SUCCESS", "100%", task_id=task, state=job_id, imageUrl=RESULT_URL.format(task))
        world.applier().apply(job_id, done, via="callback")

    inbox_item, api_item = world.jobs.item(inbox.job_id), world.jobs.item(JOB_ID)
    if entrance == "upload":  # the one step before the shared path: the upload bound the job
        first, *rest = api_item["history"]
        assert (first["from"], first["to"], first["via"]) == ("AWAITING_UPLOAD", "PENDING", "upload")
        api_item = api_item | {"history": rest, "version": api_item["version"] - 1}  # and its one write
    # a drop-folder job is created already taken for its attempt; the API job, created before its
    # target was there, is taken by a write of its own
    assert api_item["version"] == inbox_item["version"] + 1
    api_item = api_item | {"version": inbox_item["version"]}
    same = {k: v for k, v in inbox_item.items() if k not in BY_DESIGN}
    assert {k: v for k, v in api_item.items() if k not in BY_DESIGN} == same
    assert same["status"] == "SUCCESS" and same["sourceKey"] == "faces/alice.jpg" and same["attempts"] == 1
    assert [(t["from"], t["to"], t["via"]) for t in same["history"]] == [
        ("PENDING", "SUBMITTED", "submit"),
        ("SUBMITTED", "IN_PROGRESS", "callback"),
        ("IN_PROGRESS", "SUCCESS", "callback"),
    ]
    # and what differs is what each entrance is meant to set
    assert (inbox_item["resultKey"], api_item["resultKey"]) == (
        "results/alice/trip/beach.webp",
        f"results/alice/jobs/{JOB_ID}.webp",
    )
    assert world.media.objects[api_item["resultKey"]] == images.webp
    assert ("origin" not in inbox_item, api_item["origin"]) == (True, "api")
    assert [(j.jobId, j.status) for j in world.events.published] == [
        (inbox.job_id, JobStatus.SUCCESS),
        (JOB_ID, JobStatus.SUCCESS),
    ]
