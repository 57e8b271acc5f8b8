"""Tell event-driven consumers that a job finished: one EventBridge event per terminal job."""

from __future__ import annotations

import json
from typing import Any, Protocol

from swapdrop.jobs import Job

EVENT_SOURCE = "swapdrop"
DETAIL_TYPE = "Swap Job Finished"


class EventPublishFailed(RuntimeError):
    pass


class JobEventPublisher(Protocol):
    def job_finished(self, job: Job) -> None: ...


class EventBridgePublisher:
    def __init__(self, events_client: Any, bus_name: str) -> None:
        self._events = events_client
        self._bus = bus_name

    def job_finished(self, job: Job) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(job.public_view(), default=str),
                    "EventBusName": self._bus,
                    "Resources": [],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise EventPublishFailed(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
