"""sqs_batch: partial batch responses as SQS's ReportBatchItemFailures wants them (Powertools' batch utility's
contract, without its cold-start cost)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from swapdrop.sqs_batch import NotAnSqsBatch, SqsMessage, process_partial_response


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:submit",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_only_the_records_that_raised_come_back() -> None:
    seen: list[SqsMessage] = []

    def handle(message: SqsMessage) -> None:
        seen.append(message)
        if json.loads(message.body).get("fail"):
            raise RuntimeError("boom")

    answer = process_partial_response(sqs_event('{"n": 0}', '{"fail": true}', '{"n": 2}', '{"fail": 1}'), handle)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]}
    assert [m.message_id for m in seen] == ["m-0", "m-1", "m-2", "m-3"], "a failure does not stop the others"
    assert seen[2] == SqsMessage("m-2", '{"n": 2}', "handle-2", "arn:aws:sqs:us-east-1:123456789012:submit")


def test_a_batch_where_every_record_fails_is_reported_not_raised() -> None:
    def fail(message: SqsMessage) -> None:
        raise ValueError(message.message_id)

    assert process_partial_response(sqs_event("a", "b"), fail) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]
    }


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}, {"detail": {}}])
def test_an_event_without_records_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(NotAnSqsBatch, match="expected an SQS event"):
        process_partial_response(event, lambda message: None)
