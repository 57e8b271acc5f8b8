"""The only module that talks to SQS: pushing a message's next delivery out (backoff)."""

from __future__ import annotations

from functools import cache
from typing import Any


class SubmitQueue:
    def __init__(self, sqs_client: Any) -> None:
        self._sqs = sqs_client

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    @cache  # noqa: B019 - one instance per container; queue URLs never change
    def _url(self, queue_arn: str) -> str:
        _, _, _, _, account, name = queue_arn.split(":", 5)
        return self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
