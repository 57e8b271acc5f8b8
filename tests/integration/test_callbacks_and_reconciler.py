"""Callbacks over real HTTP through the API adapter, and the reconciler as the safety net."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from swapdrop.callback_token import token_for
from swapdrop.jobs import Job, JobStatus

from integration.conftest import API_KEY, Harness, jpeg

FACE = jpeg((10, 200, 30))
TARGET = jpeg((200, 30, 10))


def _submitted(harness: Harness, key: str = "inbox/alice/one.jpg") -> Job:
    harness.put("faces/alice.jpg", FACE)
    harness.put(key, TARGET)
    harness.drain_submits()
    job = harness.job_for(key)
    assert job.status is JobStatus.SUBMITTED
    return job


def _hook(harness: Harness, job: Job) -> str:
    return harness.upstream.tasks[job.taskId].notify_hook


def _secret(harness: Harness) -> str:
    sm = harness.stack.client("secretsmanager")
    return sm.get_secret_value(SecretId=harness.stack.callback_token_secret_id)["SecretString"]


def test_notify_hook_is_the_callback_url_with_a_valid_token(harness: Harness) -> None:
    job = _submitted(harness)
    hook = _hook(harness, job)
    assert hook == f"{harness.api.url}/callbacks/{job.jobId}?token={token_for(_secret(harness), job.jobId)}"


def test_callbacks_out_of_order_and_repeated(harness: Harness) -> None:
    job = _submitted(harness)
    up = harness.upstream
    in_progress_60 = up.progress(job.taskId, "IN_PROGRESS", "60%")
    in_progress_30 = {**in_progress_60, "progress": "30%"}
    submitted = {**in_progress_60, "status": "SUBMITTED", "progress": "0%"}
    success = up.succeed(job.taskId)
    assert up.callback(job.taskId, in_progress_60).json()["progress"] == 60
    assert up.callback(job.taskId, in_progress_30).json() == {
        "jobId": job.jobId,
        "status": "IN_PROGRESS",
        "progress": 60,
        "changed": False,
    }
    assert up.callback(job.taskId, submitted).json()["status"] == "IN_PROGRESS"
    assert up.callback(job.taskId, success).json()["status"] == "SUCCESS"
    for late in (success, in_progress_30, {**success, "status": "FAILURE", "failReason": "late"}):
        reply = up.callback(job.taskId, late)
        assert reply.status_code == 200 and reply.json()["changed"] is False
    done = harness.job(job.jobId)
    assert (done.status, done.progress, done.failReason) == (JobStatus.SUCCESS, 100, None)
    assert len(harness.published_events()) == 1


def test_a_failure_callback_keeps_the_upstream_reason(harness: Harness) -> None:
    job = _submitted(harness)
    reply = harness.upstream.callback(job.taskId, harness.upstream.fail(job.taskId, "执行超时 10 分钟"))
    assert reply.status_code == 200
    failed = harness.job(job.jobId)
    assert failed.status is JobStatus.FAILURE and "执行超时 10 分钟" in failed.failReason
    assert failed.resultKey is None and harness.keys("results/") == []
    assert [e["detail"]["status"] for e in harness.published_events()] == ["FAILURE"]


def test_cancel_becomes_failure(harness: Harness) -> None:
    job = _submitted(harness)
    snapshot = {**harness.upstream.tasks[job.taskId].snapshot(), "status": "CANCEL", "failReason": "by admin"}
    assert harness.upstream.callback(job.taskId, snapshot).status_code == 200
    assert harness.job(job.jobId).failReason == "cancelled upstream: by admin"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda hook: hook.split("?")[0],  # no token
        lambda hook: hook[:-4] + "AAAA",  # wrong token
        lambda hook: hook.replace("token=", "token=x"),
    ],
)
def test_callbacks_without_a_valid_token_change_nothing(harness: Harness, mangle) -> None:
    job = _submitted(harness)
    before = harness.job(job.jobId)
    reply = harness.upstream.callback(
        job.taskId, harness.upstream.succeed(job.taskId), hook=mangle(_hook(harness, job))
    )
    assert reply.status_code == 403
    assert harness.job(job.jobId) == before
    assert harness.keys("results/") == []


def test_an_unknown_job_gets_the_same_403_as_a_bad_token(harness: Harness) -> None:
    job = _submitted(harness)
    ghost = "f" * 32
    url = f"{harness.api.url}/callbacks/{ghost}?token={token_for(_secret(harness), ghost)}"
    unknown = requests.post(url, json=harness.upstream.succeed(job.taskId), timeout=10)
    bad = requests.post(f"{harness.api.url}/callbacks/{job.jobId}?token=nope", json={}, timeout=10)
    assert (unknown.status_code, unknown.json()) == (bad.status_code, bad.json()) == (403, bad.json())


def test_malformed_oversized_and_foreign_callbacks(harness: Harness) -> None:
    job = _submitted(harness)
    hook = _hook(harness, job)
    not_json = requests.post(hook, data=b"{oops", headers={"content-type": "application/json"}, timeout=10)
    assert not_json.status_code == 400
    no_status = requests.post(hook, json={"id": job.taskId}, timeout=10)
    assert no_status.status_code == 400 and any("status" in e for e in no_status.json()["errors"])
    huge = requests.post(hook, json={"id": job.taskId, "status": "SUCCESS", "pad": "x" * 300_000}, timeout=10)
    assert huge.status_code == 413
    foreign = requests.post(hook, json={**harness.upstream.succeed(job.taskId), "id": "9999"}, timeout=10)
    assert foreign.status_code == 409
    assert harness.job(job.jobId).status is JobStatus.SUBMITTED


def test_the_reconciler_finishes_jobs_whose_callbacks_never_come(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    job = _submitted(harness)
    harness.upstream.succeed(job.taskId)  # no callback is sent
    report = harness.reconcile()
    assert report["polled"] == 1 and report["updated"] == 1
    assert harness.upstream.list_requests == [[job.taskId]]
    done = harness.job(job.jobId)
    assert done.status is JobStatus.SUCCESS and done.resultKey == "results/alice/one.png"
    assert harness.read(done.resultKey) == harness.upstream.result_image
    assert len(harness.published_events()) == 1
    assert harness.reconcile()["examined"] == 0, "a finished job leaves the open-jobs index"


def test_the_reconciler_leaves_jobs_with_recent_news_alone(harness: Harness) -> None:
    job = _submitted(harness)  # RECONCILE_QUIET_SECONDS keeps its default (120 s)
    harness.upstream.succeed(job.taskId)
    assert harness.reconcile()["examined"] == 0
    assert harness.upstream.list_requests == []


def test_the_reconciler_times_out_jobs_that_never_finish(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    job = _submitted(harness)
    assert job.submittedAt is not None and job.upstreamMember == "default"
    stale = "2020-01-01T00:00:00.000Z"
    harness.table().update_item(
        Key={"jobId": job.jobId}, UpdateExpression="SET createdAt = :t", ExpressionAttributeValues={":t": stale}
    )
    assert harness.reconcile()["timed_out"] == 0, "the job timeout runs from the submit, not the creation"
    harness.table().update_item(
        Key={"jobId": job.jobId}, UpdateExpression="SET submittedAt = :t", ExpressionAttributeValues={":t": stale}
    )
    report = harness.reconcile()
    assert report["timed_out"] == 1
    failed = harness.job(job.jobId)
    assert failed.status is JobStatus.FAILURE
    assert failed.failReason.startswith("timed out: no result after 60 minutes (last status SUBMITTED")
    assert [e["detail"]["status"] for e in harness.published_events()] == ["FAILURE"]


def test_a_failed_result_copy_is_retried_by_the_reconciler(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    job = _submitted(harness)
    image = harness.upstream.result_image
    harness.upstream.result_image = b"<html>expired</html>"
    assert harness.upstream.callback(job.taskId, harness.upstream.succeed(job.taskId)).status_code == 200
    pending = harness.job(job.jobId)
    assert pending.status is JobStatus.SUCCESS and pending.resultKey is None
    assert pending.imageUrl and pending.needs_attention and "result copy failed" in pending.lastError
    assert harness.published_events() == [], "the event waits for the result copy"
    harness.upstream.result_image = image
    harness.reconcile()
    done = harness.job(job.jobId)
    assert done.resultKey == "results/alice/one.png" and harness.read(done.resultKey) == image
    assert [e["detail"]["resultKey"] for e in harness.published_events()] == [done.resultKey]


def test_pipeline_writes_trigger_nothing(harness: Harness) -> None:
    job = _submitted(harness)
    harness.upstream.callback(job.taskId, harness.upstream.succeed(job.taskId))
    assert harness.keys("results/") == ["results/alice/one.png"]
    assert harness.drain_submits() == 0
    assert len(harness.all_jobs()) == 1


def test_no_secret_token_or_image_bytes_in_logs(harness: Harness, captured_logs, capsys) -> None:
    import base64

    job = _submitted(harness)
    harness.upstream.callback(job.taskId, harness.upstream.succeed(job.taskId))
    requests.post(f"{harness.api.url}/callbacks/{job.jobId}?token=wrong-token-value", json={}, timeout=10)
    output = capsys.readouterr()
    logs = captured_logs.getvalue() + output.out + output.err
    assert '"message":"job submitted"' in logs  # the logs were captured
    assert "callback with an invalid or missing token" in logs
    for secret in (
        API_KEY,
        _secret(harness),
        token_for(_secret(harness), job.jobId),
        "wrong-token-value",
        base64.b64encode(FACE)[:40].decode(),
        base64.b64encode(TARGET)[:40].decode(),
    ):
        assert secret not in logs


def test_events_carry_the_public_job_record(harness: Harness) -> None:
    job = _submitted(harness)
    harness.upstream.callback(job.taskId, harness.upstream.succeed(job.taskId))
    (event,) = harness.published_events()
    assert (event["source"], event["detail-type"]) == ("swapdrop", "Swap Job Finished")
    detail = event["detail"]
    assert detail["jobId"] == job.jobId and detail["status"] == "SUCCESS" and detail["taskId"] == job.taskId
    assert not {"version", "leaseUntil", "eventPending", "openFlag", "openShard"} & set(detail)
    assert json.dumps(detail)  # plain JSON for consumers


# --- issue 6: claims, unknown attributes, result versions, lost submits ---------------------------


def test_a_callback_racing_the_reconciler_gives_one_event_and_one_copy_per_job(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    jobs = [_submitted(harness, f"inbox/alice/race-{i}.jpg") for i in range(6)]
    for job in jobs:
        harness.upstream.succeed(job.taskId)
    for job in jobs:  # per job: the callback and a reconciler run, let go at the same instant
        start = threading.Barrier(2)

        def callback(job: Job = job, start: threading.Barrier = start) -> None:
            start.wait()
            assert harness.upstream.callback(job.taskId).status_code == 200

        def reconcile(start: threading.Barrier = start) -> None:
            start.wait()
            harness.reconcile()

        threads = [threading.Thread(target=callback), threading.Thread(target=reconcile)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    events = harness.published_events()
    assert sorted(e["detail"]["jobId"] for e in events) == sorted(j.jobId for j in jobs)
    for job in jobs:
        done = harness.job(job.jobId)
        assert done.status is JobStatus.SUCCESS and not done.needs_attention
        versions = harness.s3.list_object_versions(Bucket=harness.stack.bucket, Prefix=done.resultKey)["Versions"]
        assert [v["VersionId"] for v in versions] == [done.resultVersionId], "one copy, and the job names it"
        assert [(t["to"], t["via"]) for t in harness.table().get_item(Key={"jobId": job.jobId})["Item"]["history"]][-1][
            0
        ] == "SUCCESS"


def test_attributes_another_version_wrote_survive_every_update(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    job = _submitted(harness)
    harness.table().update_item(
        Key={"jobId": job.jobId},
        UpdateExpression="SET ownerId = :o, ownerShard = :s",
        ExpressionAttributeValues={":o": "user-7", ":s": "user-7#OPEN#2"},
    )
    up = harness.upstream
    up.callback(job.taskId, up.progress(job.taskId, "IN_PROGRESS", "50%"))
    up.callback(job.taskId, up.succeed(job.taskId))
    other = _submitted(harness, "inbox/alice/two.jpg")
    harness.table().update_item(
        Key={"jobId": other.jobId},
        UpdateExpression="SET ownerId = :o, createdAt = :t, submittedAt = :t",
        ExpressionAttributeValues={":o": "user-8", ":t": "2020-01-01T00:00:00.000Z"},
    )
    harness.reconcile()  # times it out and publishes its event
    done, failed = (harness.table().get_item(Key={"jobId": j.jobId})["Item"] for j in (job, other))
    assert (done["status"], done["ownerId"], done["ownerShard"]) == ("SUCCESS", "user-7", "user-7#OPEN#2")
    assert (failed["status"], failed["ownerId"]) == ("FAILURE", "user-8")
    head = harness.s3.head_object(Bucket=harness.stack.bucket, Key=done["resultKey"])
    assert done["resultVersionId"] == head["VersionId"]


def test_an_older_upload_of_the_same_target_never_replaces_the_newer_result(harness: Harness) -> None:
    key = "inbox/alice/again.jpg"
    older = _submitted(harness, key)
    harness.put(key, jpeg((30, 30, 200)))  # a re-upload: a new job with the same result key
    harness.drain_submits()
    newer = next(j for j in harness.all_jobs() if j.targetKey == key and j.jobId != older.jobId)
    up = harness.upstream
    up.callback(newer.taskId, up.succeed(newer.taskId))
    up.callback(older.taskId, up.succeed(older.taskId))  # the older one finishes last
    head = harness.s3.head_object(Bucket=harness.stack.bucket, Key="results/alice/again.png")
    assert head["Metadata"]["job-id"] == newer.jobId
    assert head["VersionId"] == harness.job(newer.jobId).resultVersionId
    late = harness.job(older.jobId)
    assert late.status is JobStatus.SUCCESS and late.resultKey is None and not late.needs_attention
    assert "superseded by a newer upload of the same target" in late.resultCopyError
    assert len(harness.published_events()) == 2


def test_a_lost_submit_answer_is_adopted_from_the_task_list(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("RECONCILE_QUIET_SECONDS", "0")
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/lost.jpg", TARGET)
    lost = harness.submit_then_die("inbox/alice/lost.jpg", monkeypatch)
    assert lost.status is JobStatus.PENDING and lost.leaseUntil is not None and lost.taskId is None
    (task_id,) = harness.upstream.tasks
    harness.upstream.succeed(task_id)
    harness.table().update_item(
        Key={"jobId": lost.jobId},
        UpdateExpression="SET createdAt = :t, leaseUntil = :l",
        ExpressionAttributeValues={":t": "2020-01-01T00:00:00.000Z", ":l": 1},
    )
    harness.reconcile()
    done = harness.job(lost.jobId)
    assert (done.status, done.taskId, done.failReason) == (JobStatus.SUCCESS, task_id, None)
    assert done.resultKey == "results/alice/lost.png"
    assert len(harness.upstream.tasks) == 1
