"""The jobs API through ApiFunction's lambda_handler, with HTTP API events, on fakes (no sockets).

Idempotency runs Powertools' real DynamoDB persistence layer on moto in-process (mock_aws)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from swapdrop import wiring
from swapdrop.jobs import COPY, EVENT, Delivery, DeliveryState, JobStatus, iso

from .api_events import IAM, MAX_BYTES, OPERATOR_ARN, Api, call, jwt, segment
from .builders import TASK_ID, make_job

UPLOAD = {"upload": {"contentType": "image/png"}}


def create(body: dict[str, Any], **kwargs: Any) -> Any:
    return call("POST", "/jobs", body=body, **kwargs)


# --- health and routing -----------------------------------------------------------------------


def test_health_answers_version_and_key_state_without_auth(api: Api) -> None:
    reply = call("GET", "/health", authorizer=None)
    assert (reply.status, reply.body) == (200, {"version": "1.2.3", "apiKeySet": True})
    api.api_key = False
    assert call("GET", "/health", authorizer=None).body["apiKeySet"] is False


def test_health_says_unset_for_the_template_placeholder() -> None:
    assert wiring.API_KEY_PLACEHOLDER  # the value ApiKeySecret is generated with until the real key is put


def test_unknown_route_and_method_answer_the_error_shape(api: Api) -> None:
    missing = call("GET", "/nope")
    assert (missing.status, missing.error["code"]) == (404, "not_found")
    wrong = call("DELETE", "/jobs")
    assert (wrong.status, wrong.error["code"]) == (405, "method_not_allowed")
    assert "GET" in wrong.error["message"] and "POST" in wrong.error["message"]


def test_a_route_without_an_authorizer_is_refused(api: Api) -> None:
    reply = call("GET", "/jobs", authorizer=None)
    assert (reply.status, reply.error["code"]) == (401, "unauthenticated")


def test_a_huge_body_is_refused_before_parsing(api: Api) -> None:
    reply = create({"face": "alice", "target": UPLOAD, "metadata": {"k": "x" * 300_000}})
    assert (reply.status, reply.error["code"]) == (413, "payload_too_large")
    assert "xxxx" not in reply.error["message"]
    assert api.world.jobs.items == {}


def test_an_internal_error_is_500_in_the_error_shape_and_leaks_nothing(api: Api, monkeypatch) -> None:
    monkeypatch.setattr(api.service, "health", lambda: 1 / 0)
    reply = call("GET", "/health", authorizer=None)
    assert (reply.status, reply.error["code"]) == (500, "internal")
    assert "ZeroDivision" not in reply.error["message"]


# --- faces -----------------------------------------------------------------------------------


def test_put_face_answers_a_pinned_presigned_post(api: Api) -> None:
    reply = call("PUT", "/faces/alice", body={"contentType": "image/jpeg"})
    assert reply.status == 200
    assert reply.body["face"] == "alice" and reply.body["key"] == "faces/alice.jpg"
    form = reply.body["upload"]
    assert form["maxBytes"] == MAX_BYTES and form["fields"]["Content-Type"] == "image/jpeg"
    assert api.world.media.forms == [("faces/alice.jpg", "image/jpeg", MAX_BYTES, 900)]
    assert form["expiresAt"] == iso(api.world.clock.now + timedelta(seconds=900))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("..", "not a usable face name"),
        ("a/b", "contains '/'"),
        ("a\x1bb", "control"),
        ("x" * 300, "longer than"),
    ],
)
def test_put_face_refuses_bad_names(api: Api, name: str, why: str) -> None:
    reply = call("PUT", f"/faces/{segment(name)}", body={"contentType": "image/png"})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert why in reply.error["message"]
    assert len(reply.error["message"]) < 400
    assert reply.error["details"][0]["loc"] == ["path", "face"]
    assert api.world.media.forms == []


def test_put_face_refuses_an_unknown_type_and_extra_fields(api: Api) -> None:
    reply = call("PUT", "/faces/alice", body={"contentType": "image/gif"})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert reply.error["details"][0]["loc"] == ["body", "contentType"]
    extra = call("PUT", "/faces/alice", body={"contentType": "image/png", "acl": "public-read"})
    assert extra.status == 400 and extra.error["details"][0]["loc"] == ["body", "acl"]


def test_put_face_conflicts_with_the_same_face_under_another_extension(api: Api, images) -> None:
    api.world.media.put("faces/alice.png", images.png)
    reply = call("PUT", "/faces/alice", body={"contentType": "image/jpeg"})
    assert (reply.status, reply.error["code"]) == (409, "face_conflict")
    assert reply.error["details"] == {"existing": ["faces/alice.png"]}
    assert call("PUT", "/faces/alice", body={"contentType": "image/png"}).status == 200  # same type: a replacement


def test_list_faces_pages_with_sizes_and_dates(api: Api, images) -> None:
    for name in ("ann", "bob", "cy"):
        api.world.media.put(f"faces/{name}.jpg", images.jpeg)
    first = call("GET", "/faces", query={"limit": 2})
    assert [f["face"] for f in first.body["faces"]] == ["ann", "bob"]
    assert first.body["faces"][0] == {
        "face": "ann",
        "key": "faces/ann.jpg",
        "bytes": len(images.jpeg),
        "lastModified": "2024-10-16T09:00:00.000Z",
    }
    second = call("GET", "/faces", query={"limit": 2, "cursor": first.body["cursor"]})
    assert [f["face"] for f in second.body["faces"]] == ["cy"] and second.body["cursor"] is None
    forged = call("GET", "/faces", query={"cursor": first.body["cursor"][:-2] + "AA"})
    assert (forged.status, forged.error["code"]) == (400, "invalid_request")


def test_delete_face(api: Api, images) -> None:
    api.world.media.put("faces/alice.jpg", images.jpeg)
    assert call("DELETE", "/faces/alice").status == 204
    assert api.world.media.deleted == ["faces/alice.jpg"]
    missing = call("DELETE", "/faces/alice")
    assert (missing.status, missing.error["code"]) == (404, "not_found")
    assert call("DELETE", f"/faces/{segment('../x')}").status == 400


def test_jwt_callers_use_faces_but_only_operators_change_them(api: Api, images) -> None:
    """Faces are the stack's shared catalogue: one signed-in user must not delete or replace another's."""
    api.world.media.put("faces/alice.jpg", images.jpeg)
    user = jwt("user-1")
    listed = call("GET", "/faces", authorizer=user)
    assert [f["face"] for f in listed.body["faces"]] == ["alice"]
    for method, body in (("PUT", {"contentType": "image/jpeg"}), ("DELETE", None)):
        refused = call(method, "/faces/alice", body=body, authorizer=user)
        assert (refused.status, refused.error["code"]) == (403, "forbidden"), method
        assert "operators" in refused.error["message"]
    assert api.world.media.deleted == []
    created = create({"face": "alice", "target": UPLOAD}, authorizer=user)
    assert created.status == 202 and created.body["origin"] == "api"  # and swaps with it


# --- creating jobs ---------------------------------------------------------------------------


def test_upload_target_creates_an_awaiting_job_and_its_form_and_enqueues_nothing(api: Api) -> None:
    reply = create({"face": "alice", "target": UPLOAD, "metadata": {"order": "A-1"}})
    assert reply.status == 202
    job_id = reply.body["jobId"]
    assert len(job_id) == 32 and reply.body["status"] == "AWAITING_UPLOAD"
    assert reply.body["target"] == {"key": f"uploads/{job_id}/target.png", "url": None}
    assert reply.body["links"] == {
        "self": f"/jobs/{job_id}",
        "cancel": f"/jobs/{job_id}/cancel",
        "retry": f"/jobs/{job_id}/retry",
    }
    assert reply.body["upload"]["fields"]["Content-Type"] == "image/png"
    assert api.world.media.forms == [(f"uploads/{job_id}/target.png", "image/png", MAX_BYTES, 900)]
    job = api.world.jobs.get(job_id)
    assert job is not None and job.origin == "api" and job.metadata == {"order": "A-1"}
    assert (job.requestedBy, job.requesterKind) == (OPERATOR_ARN, "iam")
    assert job.resultBase == f"results/alice/jobs/{job_id}"
    assert job.uploadExpiresAt == iso(api.world.clock.now + timedelta(seconds=900))
    assert api.sender.sent == []


def test_s3_key_target_is_pinned_to_its_version_and_enqueued(api: Api, images) -> None:
    api.world.media.put("inbox/x/beach.jpg", images.jpeg, version_id="v7")
    reply = create({"face": "alice", "target": {"s3Key": "inbox/x/beach.jpg"}})
    assert (reply.status, reply.body["status"]) == (202, "PENDING")
    job = api.world.jobs.get(reply.body["jobId"])
    assert job is not None and (job.targetKey, job.targetVersionId) == ("inbox/x/beach.jpg", "v7")
    assert api.sender.sent == [job.jobId]


def test_url_target_is_enqueued_with_its_input_key(api: Api) -> None:
    reply = create({"face": "alice", "target": {"url": "https://images.example/b.png"}})
    assert reply.status == 202
    job_id = reply.body["jobId"]
    assert reply.body["target"] == {"key": f"jobs/{job_id}/target", "url": "https://images.example/b.png"}
    assert api.sender.sent == [job_id]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("inbox/x/missing.jpg", "not in the bucket"),
        ("inbox/x/big.jpg", "over the 1,000-byte limit"),
        ("inbox/x/doc.pdf", "not an image"),
        ("inbox/../x.jpg", "'..'"),
        ("inbox/x/\x1b[2J.jpg", "control"),
    ],
)
def test_bad_s3_key_targets_are_refused(api: Api, key: str, why: str) -> None:
    api.world.media.put("inbox/x/big.jpg", b"x" * (MAX_BYTES + 1))
    api.world.media.put("inbox/x/doc.pdf", b"%PDF")
    reply = create({"face": "alice", "target": {"s3Key": key}})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert why in reply.error["message"]
    assert reply.error["details"] == [{"loc": ["body", "target", "s3Key"], "msg": reply.error["message"]}]
    assert api.world.jobs.items == {} and api.sender.sent == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://images.example/a.png", "not http or https"),
        ("https://user:pw@images.example/a.png", "credentials"),
        ("http://127.0.0.1/a.png", "private, loopback"),
        ("http://10.0.0.7/a.png", "private, loopback"),
        ("http://169.254.169.254/latest/meta-data", "private, loopback"),
        ("http://[::ffff:192.168.0.1]/a.png", "private, loopback"),
        ("https:///a.png", "no host"),
        ("http://images.example:99999/a.png", "malformed"),
    ],
)
def test_bad_url_targets_are_refused(api: Api, url: str, why: str) -> None:
    reply = create({"face": "alice", "target": {"url": url}})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request"), reply.body
    assert why in reply.error["message"]
    assert "pw" not in reply.error["message"]
    assert api.world.jobs.items == {}


@pytest.mark.parametrize(
    ("target", "loc"),
    [
        ({}, ["body", "target"]),
        ({"s3Key": "inbox/a.jpg", "url": "https://x.example/a.png"}, ["body", "target"]),
        ({"upload": {"contentType": "image/gif"}}, ["body", "target", "upload", "contentType"]),
        ("inbox/a.jpg", ["body", "target"]),
    ],
)
def test_targets_of_the_wrong_shape_are_refused_with_where(api: Api, target: Any, loc: list[Any]) -> None:
    reply = create({"face": "alice", "target": target})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert reply.error["details"][0]["loc"] == loc


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},
        {"": "v"},
        {"k" * 41: "v"},
        {"k": "v" * 501},
        {"k": 5},
    ],
)
def test_metadata_limits(api: Api, metadata: dict[str, Any]) -> None:
    reply = create({"face": "alice", "target": UPLOAD, "metadata": metadata})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert reply.error["details"][0]["loc"][:2] == ["body", "metadata"]
    assert "v" * 100 not in str(reply.body)  # the input is never echoed back


def test_metadata_at_the_limits_is_kept(api: Api) -> None:
    metadata = {f"{i:02d}" + "k" * 38: "v" * 500 for i in range(50)}
    reply = create({"face": "alice", "target": UPLOAD, "metadata": metadata})
    assert reply.status == 202 and reply.body["metadata"] == metadata


def test_bad_face_names_on_post_jobs(api: Api) -> None:
    for face in ("..", "a/b", "a\x00b"):
        reply = create({"face": face, "target": UPLOAD})
        assert (reply.status, reply.error["code"]) == (400, "invalid_request")
        assert reply.error["details"][0]["loc"] == ["body", "face"]


def test_invalid_json_is_a_400(api: Api) -> None:
    reply = call("POST", "/jobs", raw_body='{"face": ')
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")


def test_batch_answers_one_entry_per_target_in_order_and_bad_items_do_not_sink_it(api: Api, images) -> None:
    api.world.media.put("inbox/x/a.jpg", images.jpeg)
    targets = [
        {"s3Key": "inbox/x/a.jpg"},
        {"s3Key": "inbox/x/missing.jpg"},
        UPLOAD,
        {"bogus": 1},
        {"url": "http://10.1.2.3/a.png"},
        {"url": "https://images.example/c.png"},
    ]
    reply = create({"face": "alice", "targets": targets, "metadata": {"batch": "7"}})
    assert reply.status == 202
    entries = reply.body["jobs"]
    assert [e["index"] for e in entries] == list(range(6))
    assert [("job" if e["job"] else e["error"]["code"]) for e in entries] == [
        "job",
        "invalid_request",
        "job",
        "invalid_request",
        "invalid_request",
        "job",
    ]
    assert entries[3]["error"]["details"][0]["loc"] == ["body", "targets", 3]
    assert entries[1]["error"]["details"][0]["loc"] == ["body", "targets", 1, "s3Key"]
    assert entries[2]["job"]["upload"] is not None
    made = [e["job"]["jobId"] for e in entries if e["job"]]
    assert sorted(api.world.jobs.items) == sorted(made)
    assert api.sender.sent == [made[0], made[2]]  # PENDING ones only, the upload waits for its file
    assert all(api.world.jobs.get(i).metadata == {"batch": "7"} for i in made)


def test_batch_limits(api: Api) -> None:
    too_many = create({"face": "alice", "targets": [UPLOAD] * 101})
    assert (too_many.status, too_many.error["details"][0]["loc"]) == (400, ["body", "targets"])
    empty = create({"face": "alice", "targets": []})
    assert empty.status == 400
    both = create({"face": "alice", "targets": [UPLOAD], "target": UPLOAD})
    assert both.status == 400


def test_a_job_that_cannot_be_queued_ends_failure_not_stuck(api: Api, images) -> None:
    api.world.media.put("inbox/x/a.jpg", images.jpeg)
    api.sender.fail_with = RuntimeError("sqs down")
    reply = create({"face": "alice", "target": {"s3Key": "inbox/x/a.jpg"}})
    assert (reply.status, reply.error["code"]) == (500, "internal")
    (item,) = api.world.jobs.items.values()
    assert item["status"] == "FAILURE" and "could not queue" in item["failReason"]


# --- reading jobs ----------------------------------------------------------------------------


def test_get_job_with_result_has_a_presigned_url_and_its_size(api: Api, images) -> None:
    api.world.media.put("results/alice/jobs/j1.jpg", images.jpeg, version_id="rv1", content_type="image/jpeg")
    api.world.jobs.put(
        make_job(jobId="j1", status=JobStatus.SUCCESS, resultKey="results/alice/jobs/j1.jpg", resultVersionId="rv1")
    )
    reply = call("GET", "/jobs/j1")
    assert reply.status == 200
    assert reply.body["result"] == {
        "key": "results/alice/jobs/j1.jpg",
        "url": "https://bkt.s3.amazonaws.com/results/alice/jobs/j1.jpg?X-Amz-Expires=300&versionId=rv1",
        "contentType": "image/jpeg",
        "bytes": len(images.jpeg),
    }
    assert set(reply.body) >= {"progress", "queuePosition", "createdAt", "updatedAt", "finishedAt", "metadata"}
    assert "leaseUntil" not in reply.body and "deliveries" not in reply.body


def test_unknown_job_is_404(api: Api) -> None:
    reply = call("GET", f"/jobs/{'f' * 32}")
    assert (reply.status, reply.error["code"]) == (404, "not_found")
    huge = call("GET", f"/jobs/{'f' * 5000}")
    assert huge.status == 404 and len(huge.error["message"]) < 200


def test_jwt_callers_see_only_their_own_jobs(api: Api) -> None:
    api.world.jobs.put(make_job(jobId="mine", requestedBy="user-1", requesterKind="jwt"))
    api.world.jobs.put(make_job(jobId="theirs", requestedBy="user-2", requesterKind="jwt"))
    api.world.jobs.put(make_job(jobId="inbox"))
    assert call("GET", "/jobs/mine", authorizer=jwt("user-1")).status == 200
    for job_id in ("theirs", "inbox"):
        reply = call("GET", f"/jobs/{job_id}", authorizer=jwt("user-1"))
        assert (reply.status, reply.error["code"]) == (404, "not_found")
        assert call("POST", f"/jobs/{job_id}/cancel", authorizer=jwt("user-1")).status == 404
        assert call("POST", f"/jobs/{job_id}/retry", authorizer=jwt("user-1")).status == 404
    assert call("GET", "/jobs/theirs", authorizer=IAM).status == 200  # operators see everything
    created = create({"face": "alice", "target": UPLOAD}, authorizer=jwt("user-1"))
    job = api.world.jobs.get(created.body["jobId"])
    assert job is not None and (job.requestedBy, job.requesterKind) == ("user-1", "jwt")


def test_wait_holds_until_terminal(api: Api) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.SUBMITTED, taskId=TASK_ID))

    def finish_at_three(elapsed: float) -> None:
        if elapsed >= 3 and api.world.jobs.get("j1").status is JobStatus.SUBMITTED:
            api.world.jobs.concurrent_write(
                "j1", lambda j: replace(j, status=JobStatus.FAILURE, failReason="upstream failure: x")
            )

    api.during_sleep.append(finish_at_three)
    reply = call("GET", "/jobs/j1", query={"wait": 20})
    assert reply.body["status"] == "FAILURE"
    assert api.ticks[0] == 3  # answered as soon as it ended, not after 20 s


def test_wait_holds_a_success_until_its_result_is_in_the_bucket(api: Api) -> None:
    """SUCCESS is recorded a moment before the result's copy: a waiter must get `result` with it."""
    copying = {COPY: Delivery(claimUntil=10**10), EVENT: Delivery()}
    api.world.jobs.put(
        make_job(jobId="j1", status=JobStatus.SUCCESS, taskId=TASK_ID, imageUrl="http://x/r.png", deliveries=copying)
    )
    api.world.media.objects["results/alice/jobs/j1.png"] = b"png"

    def copied_at_two(elapsed: float) -> None:
        if elapsed >= 2 and api.world.jobs.get("j1").resultKey is None:
            done = {COPY: Delivery(state=DeliveryState.DONE), EVENT: Delivery()}
            api.world.jobs.concurrent_write(
                "j1", lambda j: replace(j, resultKey="results/alice/jobs/j1.png", deliveries=done)
            )

    api.during_sleep.append(copied_at_two)
    reply = call("GET", "/jobs/j1", query={"wait": 20})
    assert reply.body["status"] == "SUCCESS" and reply.body["result"]["key"] == "results/alice/jobs/j1.png"
    assert api.ticks[0] == 2


def test_wait_gives_up_after_n_seconds_and_is_bounded(api: Api) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.IN_PROGRESS, taskId=TASK_ID))
    reply = call("GET", "/jobs/j1", query={"wait": 4})
    assert (reply.status, reply.body["status"], api.ticks[0]) == (200, "IN_PROGRESS", 4)
    too_long = call("GET", "/jobs/j1", query={"wait": 26})
    assert (too_long.status, too_long.error["details"][0]["loc"]) == (400, ["query", "wait"])
    assert call("GET", "/jobs/j1", query={"wait": -1}).status == 400


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_a_pending_job_never_sends_it_and_publishes_the_event(api: Api) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.PENDING))
    reply = call("POST", "/jobs/j1/cancel")
    assert (reply.status, reply.body["status"]) == (200, "CANCELLED")
    assert api.cancelled == []  # no task yet: nothing to cancel upstream
    assert [job.jobId for job in api.world.events.published] == ["j1"]
    assert api.world.jobs.get("j1").history[-1].via == "api"


@pytest.mark.parametrize("upstream", [True, None, RuntimeError("upstream down")])
def test_cancel_a_submitted_job_cancels_its_task_whatever_upstream_answers(api: Api, upstream: Any) -> None:
    api.cancel_answer = upstream
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.SUBMITTED, taskId=TASK_ID))
    reply = call("POST", "/jobs/j1/cancel")
    assert (reply.status, reply.body["status"]) == (200, "CANCELLED")
    assert api.cancelled == [TASK_ID]


@pytest.mark.parametrize("member", ["relay-b", None])
def test_cancel_goes_to_the_upstream_pool_member_holding_the_task(api: Api, member: str | None) -> None:
    """None: a job from before the pool (the pool sends it to its first member)."""
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.SUBMITTED, taskId=TASK_ID, upstreamMember=member))
    assert call("POST", "/jobs/j1/cancel").status == 200
    assert (api.cancelled, api.cancelled_on) == ([TASK_ID], [member])


@pytest.mark.parametrize("status", [JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REJECTED, JobStatus.CANCELLED])
def test_cancel_after_finish_is_409_with_its_status(api: Api, status: JobStatus) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=status))
    reply = call("POST", "/jobs/j1/cancel")
    assert (reply.status, reply.error["code"], reply.error["details"]) == (
        409,
        "job_finished",
        {"status": status.value},
    )
    assert api.cancelled == []


def test_cancel_of_an_unknown_job_is_404(api: Api) -> None:
    assert call("POST", "/jobs/nope/cancel").status == 404


# --- retry -----------------------------------------------------------------------------------


def test_retry_makes_a_linked_job_with_the_same_inputs(api: Api, images) -> None:
    api.world.media.put("inbox/alice/trip/beach.jpg", images.jpeg)
    api.world.jobs.put(
        make_job(
            jobId="old",
            status=JobStatus.FAILURE,
            targetVersionId="v1",
            metadata={"k": "v"},
            requestedBy="user-1",
            requesterKind="jwt",
        )
    )
    reply = call("POST", "/jobs/old/retry", authorizer=jwt("user-1"))
    assert (reply.status, reply.body["status"], reply.body["retryOf"]) == (202, "PENDING", "old")
    new = api.world.jobs.get(reply.body["jobId"])
    assert new is not None
    assert (new.targetKey, new.targetVersionId, new.face, new.metadata) == (
        "inbox/alice/trip/beach.jpg",
        "v1",
        "alice",
        {"k": "v"},
    )
    assert (new.requestedBy, new.requesterKind, new.origin) == ("user-1", "jwt", "api")
    assert new.resultBase == f"results/alice/jobs/{new.jobId}"
    assert api.world.jobs.get("old").retriedBy == new.jobId
    assert api.sender.sent == [new.jobId]
    again = call("POST", "/jobs/old/retry", authorizer=jwt("user-1"))
    assert (again.status, again.error["code"]) == (409, "already_retried")
    assert new.jobId in again.error["message"]


def test_retry_of_a_url_job_whose_fetch_failed_fetches_again(api: Api) -> None:
    api.world.jobs.put(
        make_job(
            jobId="old", status=JobStatus.REJECTED, targetKey="jobs/old/target", targetUrl="https://i.example/a.png"
        )
    )
    reply = call("POST", "/jobs/old/retry")
    assert reply.body["target"]["url"] == "https://i.example/a.png"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.IN_PROGRESS, JobStatus.SUCCESS])
def test_retry_of_a_running_or_successful_job_is_409(api: Api, status: JobStatus) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=status))
    reply = call("POST", "/jobs/j1/retry")
    assert (reply.status, reply.error["code"], reply.error["details"]) == (
        409,
        "not_retryable",
        {"status": status.value},
    )


def test_retry_of_a_job_whose_upload_never_came_is_409(api: Api) -> None:
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.FAILURE, uploadExpiresAt="2024-10-16T09:00:00.000Z"))
    reply = call("POST", "/jobs/j1/retry")
    assert (reply.status, reply.error["code"]) == (409, "not_retryable")
    assert "never uploaded" in reply.error["message"]
