"""The only module that talks to SQS: pushing a message's next delivery out (backoff), or sending a job
waiting for upstream capacity again (a new message: its receive count starts afresh, so a long wait
never reaches the dead-letter queue's QueueMaxReceiveCount)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any


class SubmitQueue:
    def __init__(self, sqs_client: Any) -> None:
        self._sqs = sqs_client

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def send_again(self, queue_arn: str, waits: list[tuple[str, int]]) -> None:
        """Each (job id, seconds) as {"jobId"}, delivered after its delay (at most 900 s, SQS's limit);
        raises when SQS did not take one (the received message then comes back and is tried again)."""
        for start in range(0, len(waits), 10):
            chunk = waits[start : start + 10]
            entries = [
                {"Id": str(i), "MessageBody": json.dumps({"jobId": job_id}), "DelaySeconds": min(900, max(0, delay))}
                for i, (job_id, delay) in enumerate(chunk)
            ]
            answer = self._sqs.send_message_batch(QueueUrl=self._url(queue_arn), Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS did not take {len(answer['Failed'])} of {len(entries)} messages sent again")

    @cache  # noqa: B019 - one instance per container; queue URLs never change
    def _url(self, queue_arn: str) -> str:
        _, _, _, _, account, name = queue_arn.split(":", 5)
        return self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


class JobMessages:
    """Sends {"jobId": …} to the SubmitQueue (the jobs API's entrance to the submitter), 10 per call."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send_jobs(self, job_ids: list[str]) -> list[str]:
        """The ids SQS did not take (empty when all were sent)."""
        refused: list[str] = []
        for start in range(0, len(job_ids), 10):
            chunk = job_ids[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": json.dumps({"jobId": job_id})} for i, job_id in enumerate(chunk)]
            answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            refused.extend(chunk[int(failed["Id"])] for failed in answer.get("Failed", []))
        return refused
