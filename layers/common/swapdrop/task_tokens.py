"""Answer a job's Step Functions task token when the job ends (the outbox entry `sfn`).

A workflow that asked for a swap with `.waitForTaskToken` waits until Swapdrop calls
SendTaskSuccess (SUCCESS: the public job record plus the result's bucket and key) or
SendTaskFailure (FAILURE, REJECTED, CANCELLED: error = the status, cause = failReason).
The finisher works this entry under a claim, so racing finishers answer once; a throttled or
failed call is retried with the outbox's backoff, and a token Step Functions no longer knows is
given up at once with the reason on the job (retrying could never succeed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from swapdrop.finishing import DeliveryFailed
from swapdrop.jobs import Job, JobStatus

MAX_OUTPUT_CHARS = 256 * 1024
"""SendTaskSuccess `output`: at most 256 KiB. The JSON is ASCII (non-ASCII escaped), so characters are bytes."""
MAX_CAUSE_CHARS = 32768
"""SendTaskFailure `cause`: at most 32,768 characters."""
COMPACT_FIELDS = ("jobId", "status", "face", "targetKey", "targetVersionId", "resultVersionId", "createdAt")
COMPACT_FIELDS += ("finishedAt", "origin", "taskId")
"""What an output too large for Step Functions keeps (a record that big is all history and metadata):
the job's identity and its result. GET /jobs/{jobId} has the rest."""

FINAL_ERRORS = {
    "TaskTimedOut": "the task is closed (TaskTimedOut): it timed out, its execution ended, or it was answered before",
    "TaskDoesNotExist": "no such task (TaskDoesNotExist): its execution ended, or it was answered before",
    "InvalidToken": "the task token is not valid (InvalidToken)",
}
"""Answers that no retry can change: the entry is given up and the job says why."""


class TaskTokenAnswerer:
    """The SFN outbox consumer. `client` builds the Step Functions client on first use, so a
    function that never meets a task token never pays for one at cold start."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client_factory = client
        self._client: Any = None

    def deliver(self, job: Job) -> None:
        if not job.taskToken:
            return  # nothing to answer (an entry without a token cannot be made; be lenient anyway)
        try:
            if job.status is JobStatus.SUCCESS:
                self._sfn().send_task_success(taskToken=job.taskToken, output=success_output(job))
            else:
                error, cause = failure_details(job)
                self._sfn().send_task_failure(taskToken=job.taskToken, error=error, cause=cause)
        except ClientError as failed:
            code = str(failed.response.get("Error", {}).get("Code", "ClientError"))
            if code in FINAL_ERRORS:
                raise DeliveryFailed(f"Step Functions: {FINAL_ERRORS[code]}", final=True) from None
            status = failed.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            raise DeliveryFailed(f"could not answer the task token ({code}, HTTP {status}); will retry") from None
        except BotoCoreError as failed:  # connection or timeout: the token's holder never heard
            raise DeliveryFailed(f"could not reach Step Functions ({type(failed).__name__}); will retry") from None

    def _sfn(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client


def success_output(job: Job) -> str:
    """The public job record plus where the result is: {"bucket", "resultKey"}, as JSON.

    Over 256 KiB (only a record full of long metadata and history gets there), the output keeps
    COMPACT_FIELDS and says `"truncated": true` instead of failing the workflow's task.
    """
    view = job.public_view() | {"bucket": job.bucket, "resultKey": job.resultKey}
    output = json.dumps(view, default=str, sort_keys=True)
    if len(output) <= MAX_OUTPUT_CHARS:
        return output
    compact = {name: view.get(name) for name in COMPACT_FIELDS}
    compact |= {"bucket": job.bucket, "resultKey": job.resultKey, "truncated": True}
    return json.dumps(compact, default=str, sort_keys=True)  # bounded: ids, keys of ≤ 1 KiB, times


def failure_details(job: Job) -> tuple[str, str]:
    """SendTaskFailure's error (the status: FAILURE, REJECTED or CANCELLED) and cause (failReason,
    cut to the API's limit with a marker). A workflow's Catch can match on the error."""
    cause = job.failReason or f"the job ended {job.status.value}"
    if len(cause) > MAX_CAUSE_CHARS:
        marker = " … (cut; GET /jobs/{jobId} has all of it)"
        cause = cause[: MAX_CAUSE_CHARS - len(marker)] + marker
    return job.status.value, cause
