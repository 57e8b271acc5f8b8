"""task_tokens: the Step Functions answer for a job that carries a task token (outbox entry `sfn`).

The answers are checked against botocore's own model of the Step Functions API (a Stubber on a real
client validates every parameter, lengths included), the outbox's retry and give-up rules on fakes,
and the race of a callback and the reconciler finishing one job: the token is answered once.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from swapdrop import state_machine as sm
from swapdrop.finishing import DeliveryFailed, JobFinisher
from swapdrop.jobs import SFN, Delivery, DeliveryState, Job, JobStatus, iso
from swapdrop.observability import logger
from swapdrop.result_download import DownloadedImage
from swapdrop.task_tokens import MAX_CAUSE_CHARS, MAX_OUTPUT_CHARS, TaskTokenAnswerer, success_output

from .builders import make_job, snap
from .conftest import World

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token-" + "x" * 200
URL = "https://cdn.example/r/{}.png"


def sfn_client() -> Any:
    return boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")


def ended(status: JobStatus, **fields: Any) -> Job:
    base: dict[str, Any] = {
        "jobId": "job-sfn",
        "taskToken": TOKEN,
        "taskId": "T-1",
        "finishedAt": "2024-10-16T10:00:00.000Z",
    }
    if status is JobStatus.SUCCESS:
        base |= {"resultKey": "results/alice/jobs/job-sfn.png", "imageUrl": URL.format("x"), "progress": 100}
    return make_job(status=status, **(base | fields))


# --- the answers, as the API model checks them -----------------------------------------------------


def test_success_sends_the_public_record_with_bucket_and_result_key() -> None:
    job = ended(JobStatus.SUCCESS, metadata={"order": "42"})
    client = sfn_client()
    expected = job.public_view() | {"bucket": job.bucket, "resultKey": job.resultKey}
    with Stubber(client) as stub:
        stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": success_output(job)})
        TaskTokenAnswerer(lambda: client).deliver(job)
        stub.assert_no_pending_responses()
    output = json.loads(success_output(job))
    assert output == json.loads(json.dumps(expected, default=str))
    assert output["bucket"] == job.bucket and output["resultKey"] == "results/alice/jobs/job-sfn.png"
    assert output["metadata"] == {"order": "42"} and output["status"] == "SUCCESS"
    assert "taskToken" not in output and TOKEN not in success_output(job)


@pytest.mark.parametrize("status", [JobStatus.FAILURE, JobStatus.REJECTED, JobStatus.CANCELLED])
def test_failure_rejected_and_cancelled_send_the_status_and_the_reason(status: JobStatus) -> None:
    job = ended(status, failReason=f"why it ended {status}")
    client = sfn_client()
    with Stubber(client) as stub:
        expected = {"taskToken": TOKEN, "error": status.value, "cause": f"why it ended {status}"}
        stub.add_response("send_task_failure", {}, expected)
        TaskTokenAnswerer(lambda: client).deliver(job)
        stub.assert_no_pending_responses()


def test_a_cause_longer_than_the_api_takes_is_cut_with_a_marker() -> None:
    job = ended(JobStatus.FAILURE, failReason="upstream said: " + "é" * 50_000)
    client = sfn_client()
    sent: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.states.SendTaskFailure", lambda params, **_: sent.append(params))
    with Stubber(client) as stub:  # the stub validates `cause` against the model's maximum length
        stub.add_response("send_task_failure", {}, None)
        TaskTokenAnswerer(lambda: client).deliver(job)
    assert len(sent[0]["cause"]) == MAX_CAUSE_CHARS
    assert sent[0]["cause"].startswith("upstream said: éé") and sent[0]["cause"].endswith("has all of it)")


def test_an_output_over_256_kib_keeps_the_jobs_identity_and_result_and_says_truncated() -> None:
    metadata = {f"k{i:02d}": "v" * 500 for i in range(50)}  # the API's most: 25 KiB, far under the limit
    job = ended(JobStatus.SUCCESS, metadata=metadata)
    big = dataclasses.replace(job, lastError="e" * (MAX_OUTPUT_CHARS + 1))  # a field the public record shows
    output = success_output(big)
    assert len(output.encode()) <= MAX_OUTPUT_CHARS
    compact = json.loads(output)
    assert compact["truncated"] is True and "metadata" not in compact and "lastError" not in compact
    assert (compact["jobId"], compact["status"], compact["bucket"], compact["resultKey"]) == (
        "job-sfn",
        "SUCCESS",
        job.bucket,
        "results/alice/jobs/job-sfn.png",
    )
    client = sfn_client()
    with Stubber(client) as stub:  # and the API model takes it
        stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": output})
        TaskTokenAnswerer(lambda: client).deliver(big)
    normal = json.loads(success_output(job))
    assert "truncated" not in normal and len(normal["metadata"]) == 50, "a record under the limit goes whole"


def test_non_ascii_output_is_measured_in_bytes() -> None:
    job = ended(JobStatus.SUCCESS, metadata={"name": "名前" * 200})
    output = success_output(job)
    assert len(output) == len(output.encode()), "escaped: characters are bytes"
    assert json.loads(output)["metadata"]["name"] == "名前" * 200


# --- errors: given up at once, or retried ---------------------------------------------------------


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"Provided task token {TOKEN} ..."},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendTaskSuccess",
    )


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_token_step_functions_no_longer_knows_is_given_up(code: str) -> None:
    client = sfn_client()
    with Stubber(client) as stub:
        stub.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
        with pytest.raises(DeliveryFailed) as failed:
            TaskTokenAnswerer(lambda: client).deliver(ended(JobStatus.SUCCESS))
    assert failed.value.final and code in failed.value.reason and TOKEN not in failed.value.reason


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (client_error("ThrottlingException", 400), "ThrottlingException, HTTP 400"),
        (client_error("ServiceUnavailable", 503), "ServiceUnavailable, HTTP 503"),
        (client_error("InternalFailure", 500), "InternalFailure, HTTP 500"),
        (client_error("AccessDeniedException", 400), "AccessDeniedException"),  # a policy fix makes it work
        (EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"), "EndpointConnectionError"),
    ],
)
def test_throttling_server_errors_and_lost_connections_are_retried(error: Exception, why: str) -> None:
    class Failing:
        def send_task_success(self, **_: Any) -> None:
            raise error

    with pytest.raises(DeliveryFailed) as failed:
        TaskTokenAnswerer(Failing).deliver(ended(JobStatus.SUCCESS))
    assert not failed.value.final and why in failed.value.reason
    assert TOKEN not in failed.value.reason, "the token is a secret: never in a reason (logs, the job)"


def test_the_client_is_built_on_first_use_and_once() -> None:
    built: list[Any] = []

    def build() -> Any:
        built.append(FakeStepFunctions())
        return built[-1]

    answerer = TaskTokenAnswerer(build)
    assert built == [], "no client at cold start"
    answerer.deliver(ended(JobStatus.SUCCESS))
    answerer.deliver(ended(JobStatus.FAILURE, failReason="no"))
    assert len(built) == 1 and len(built[0].answers) == 2


# --- through the finisher: the outbox's retries, give-ups and the race --------------------------


class FakeStepFunctions:
    """Records answers; `fail` raises the next errors; `meanwhile` runs before an answer goes out
    (where a second finisher racing with this one would get in)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []
        self.fail: list[Exception] = []
        self.meanwhile: list[Callable[[], object]] = []

    def _answer(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        while self.meanwhile:
            self.meanwhile.pop(0)()
        if self.fail:
            raise self.fail.pop(0)
        self.answers.append((kind, params))
        return {}

    def send_task_success(self, **params: Any) -> dict[str, Any]:
        return self._answer("success", params)

    def send_task_failure(self, **params: Any) -> dict[str, Any]:
        return self._answer("failure", params)


@dataclass
class SfnWorld(World):
    sfn: FakeStepFunctions = field(default_factory=FakeStepFunctions)

    @property
    def finisher(self) -> JobFinisher:
        answerer = TaskTokenAnswerer(lambda: self.sfn)
        return JobFinisher(
            self.jobs, self.media, self.downloader, self.events, clock=self.clock, consumers={SFN: answerer}
        )


@pytest.fixture
def sfn_world(images: SimpleNamespace) -> SfnWorld:
    world = SfnWorld()
    for name in ("a", "b"):
        world.downloader.results[URL.format(name)] = DownloadedImage(images.png, "png", "image/png")
    return world


def running(world: World, job_id: str = "race", **fields: Any) -> Job:
    now = world.clock()
    return world.jobs.put(
        make_job(
            jobId=job_id,
            status=JobStatus.IN_PROGRESS,
            taskId=f"T-{job_id}",
            progress=50,
            attempts=1,
            taskToken=TOKEN,
            createdAt=iso(now.replace(minute=now.minute - 10)),
            updatedAt=iso(now.replace(minute=now.minute - 5)),
            targetKey=f"inbox/alice/{job_id}.jpg",
            **fields,
        )
    )


def test_a_finished_job_answers_its_token_after_the_copy_and_the_event(sfn_world: SfnWorld) -> None:
    running(sfn_world)
    sfn_world.applier().apply("race", snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a")), "callback")
    job = sfn_world.jobs.get("race")
    assert job is not None and job.deliveries[SFN].state is DeliveryState.DONE and not job.needs_attention
    [(kind, params)] = sfn_world.sfn.answers
    output = json.loads(params["output"])
    assert kind == "success" and output["resultKey"] == job.resultKey == "results/alice/race.png"
    assert output["resultVersionId"] == "v1", "the result is copied before the workflow is told"
    assert len(sfn_world.events.published) == 1


def test_a_failed_job_answers_with_the_status_and_reason(sfn_world: SfnWorld) -> None:
    running(sfn_world)
    sfn_world.applier().apply("race", snap("FAILURE", task_id="T-race", failReason="no face found"), "callback")
    [(kind, params)] = sfn_world.sfn.answers
    assert (kind, params["error"], params["cause"]) == ("failure", "FAILURE", "upstream failure: no face found")


def test_a_throttled_answer_is_retried_by_the_reconciler_after_the_backoff(sfn_world: SfnWorld) -> None:
    running(sfn_world)
    sfn_world.sfn.fail.append(client_error("ThrottlingException", 400))
    sfn_world.applier().apply("race", snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a")), "callback")
    job = sfn_world.jobs.get("race")
    assert job is not None and job.needs_attention and job.deliveries[SFN].lastError
    assert "ThrottlingException" in (job.deliveries[SFN].lastError or "") and sfn_world.sfn.answers == []
    sfn_world.reconciler(quiet_seconds=0).run()
    assert sfn_world.sfn.answers == [], "not before its backoff"
    sfn_world.clock.advance(seconds=sm.DELIVERY_BACKOFF_SECONDS)
    sfn_world.reconciler(quiet_seconds=0).run()
    job = sfn_world.jobs.get("race")
    assert job is not None and job.deliveries[SFN].state is DeliveryState.DONE and not job.needs_attention
    assert len(sfn_world.sfn.answers) == 1 and len(sfn_world.events.published) == 1


def test_a_timed_out_task_is_given_up_at_once_and_the_job_says_why(sfn_world: SfnWorld) -> None:
    running(sfn_world)
    sfn_world.sfn.fail.append(client_error("TaskTimedOut", 400))
    sfn_world.applier().apply("race", snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a")), "callback")
    job = sfn_world.jobs.get("race")
    assert job is not None and job.deliveries[SFN].state is DeliveryState.FAILED and not job.needs_attention
    assert "TaskTimedOut" in (job.deliveries[SFN].lastError or "")
    assert job.status is JobStatus.SUCCESS, "the swap itself succeeded; only the answer was refused"
    sfn_world.clock.advance(hours=2)
    sfn_world.reconciler(quiet_seconds=0).run()
    assert sfn_world.sfn.answers == [] and sfn_world.sfn.fail == []


def test_the_token_never_reaches_the_logs(sfn_world: SfnWorld) -> None:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    lines = io.StringIO()
    previous_stream, previous_level = handler.setStream(lines), logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        running(sfn_world)
        sfn_world.sfn.fail.append(client_error("ThrottlingException", 400))
        success = snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a"))
        sfn_world.applier().apply("race", success, "callback")
        sfn_world.clock.advance(seconds=sm.DELIVERY_BACKOFF_SECONDS)
        sfn_world.reconciler(quiet_seconds=0).run()
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)
    logged = lines.getvalue()
    assert "outbox delivery failed" in logged and "ThrottlingException" in logged
    assert len(sfn_world.sfn.answers) == 1 and TOKEN not in logged and TOKEN[:40] not in logged


class Interleaving:
    def __init__(self, inner: Any, meanwhile: list[Callable[[], object]]) -> None:
        self._inner, self.meanwhile = inner, meanwhile

    def download(self, url: str) -> DownloadedImage:
        while self.meanwhile:
            self.meanwhile.pop(0)()
        return self._inner.download(url)

    def job_finished(self, job: Job) -> None:
        while self.meanwhile:
            self.meanwhile.pop(0)()
        self._inner.job_finished(job)


@pytest.mark.parametrize("where", ["copy", "event", "answer"])
def test_a_callback_and_the_reconciler_finishing_one_job_answer_the_token_once(sfn_world: SfnWorld, where: str) -> None:
    """The callback wins the terminal transition; while it copies, publishes or answers, the reconciler
    polls the same task (SUCCESS) and runs its finisher on the same job: it finds the entry claimed."""
    running(sfn_world)
    success = snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a"))
    sfn_world.poller.snapshots["T-race"] = success
    meanwhile: list[Callable[[], object]] = [lambda: sfn_world.reconciler(quiet_seconds=0).run()]
    if where == "copy":
        sfn_world.downloader = Interleaving(sfn_world.downloader, meanwhile)  # type: ignore[assignment]
    elif where == "event":
        sfn_world.events = Interleaving(sfn_world.events, meanwhile)  # type: ignore[assignment]
    else:
        sfn_world.sfn.meanwhile = meanwhile
    sfn_world.applier().apply("race", success, via="callback")
    assert meanwhile == [], "the reconciler ran inside the callback's finishing"
    assert len(sfn_world.sfn.answers) == 1
    job = sfn_world.jobs.get("race")
    assert job is not None and job.deliveries[SFN].state is DeliveryState.DONE and job.deliveries[SFN].attempts == 1
    sfn_world.clock.advance(hours=1)
    sfn_world.reconciler(quiet_seconds=0).run()
    assert len(sfn_world.sfn.answers) == 1, "nothing is left to answer"


def test_the_reconciler_taking_over_a_crashed_answer_answers_once_more_at_most(sfn_world: SfnWorld) -> None:
    """A finisher that died holding the claim (before or after its call): the lease runs out, the
    reconciler answers. Had the first call gone out, Step Functions says the task is closed and the
    entry ends FAILED with that reason; the workflow saw one answer either way."""
    running(sfn_world)
    sfn_world.applier().apply("race", snap("FAILURE", task_id="T-race", failReason="no"), "callback")
    job = sfn_world.jobs.get("race")
    assert job is not None
    reopened = dataclasses.replace(job, deliveries={**job.deliveries, SFN: Delivery()}, version=job.version)
    claim = sm.claim_delivery(reopened, sfn_world.clock(), SFN)
    sfn_world.jobs.put(claim.job)  # held by a finisher that then died
    sfn_world.reconciler(quiet_seconds=0).run()
    assert len(sfn_world.sfn.answers) == 1, "the claim is still held"
    sfn_world.clock.advance(seconds=sm.DELIVERY_LEASE_SECONDS)
    sfn_world.sfn.fail.append(client_error("TaskTimedOut", 400))  # the first answer closed the task
    sfn_world.reconciler(quiet_seconds=0).run()
    job = sfn_world.jobs.get("race")
    assert job is not None and job.deliveries[SFN].state is DeliveryState.FAILED and not job.needs_attention
    assert len(sfn_world.sfn.answers) == 1


# --- wiring ----------------------------------------------------------------------------------------


def test_every_wired_finisher_answers_task_tokens_with_a_client_made_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swapdrop import wiring
    from swapdrop.config import Settings

    config = Settings(
        bucket_name="media-bucket",
        jobs_table_name="jobs",
        event_bus_name="bus",
        upstream_base_url="https://swap.example",
        upstream_api_key_secret_id="api-key",
        callback_token_secret_id="callback",
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")  # as on Lambda: else botocore asks the instance metadata
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    made: list[str] = []
    real_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda name, **kw: made.append(name) or real_client(name, **kw))
    wiring.reset()
    try:
        finisher = wiring.finisher(config, jobs=None, media=None)  # type: ignore[arg-type]
        answerer = finisher._consumers[SFN]
        assert isinstance(answerer, TaskTokenAnswerer) and "stepfunctions" not in made, "none at cold start"
        client = answerer._sfn()
        assert made.count("stepfunctions") == 1 and client.meta.service_model.service_name == "stepfunctions"
        again = wiring.finisher(config, jobs=None, media=None)._consumers[SFN]  # type: ignore[arg-type]
        assert again._sfn() is client and made.count("stepfunctions") == 1, "one client per container"
    finally:
        wiring.reset()
