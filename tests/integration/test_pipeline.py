"""The whole pipeline on moto's server: upload → SQS → submit → upstream → callback → DynamoDB → results/."""

from __future__ import annotations

from swapdrop.jobs import JobStatus

from integration.conftest import API_KEY, Harness, jpeg, png

FACE = jpeg((10, 200, 30))


def test_happy_path_with_callbacks(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    target_key = "inbox/alice/summer trip/café + friends.jpg"
    target = png((90, 90, 200))
    harness.put(target_key, target)

    assert harness.drain_submits() >= 1
    job = harness.job_for(target_key)
    assert job.status is JobStatus.SUBMITTED
    assert job.face == "alice" and job.sourceKey == "faces/alice.jpg"
    swap = harness.upstream.swaps[0]
    assert swap.headers["authorization"] == f"Bearer {API_KEY}"
    assert (swap.source, swap.source_mime) == (FACE, "image/jpeg")
    assert (swap.target, swap.target_mime) == (target, "image/png")
    assert swap.body["state"] == job.jobId
    task_id = job.taskId
    assert task_id in harness.upstream.tasks

    assert (
        harness.upstream.callback(task_id, harness.upstream.progress(task_id, "IN_PROGRESS", "45%")).status_code == 200
    )
    assert harness.job(job.jobId).progress == 45
    response = harness.upstream.callback(task_id, harness.upstream.succeed(task_id))
    assert response.status_code == 200, response.text

    done = harness.job(job.jobId)
    assert done.status is JobStatus.SUCCESS and done.progress == 100
    assert done.resultKey == "results/alice/summer trip/café + friends.png"
    assert harness.read(done.resultKey) == harness.upstream.result_image
    assert not done.needs_attention
    events = harness.published_events()
    assert [e["detail"]["jobId"] for e in events] == [job.jobId]
    assert events[0]["detail"]["resultKey"] == done.resultKey
