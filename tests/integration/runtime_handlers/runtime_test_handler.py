"""A tiny Lambda handler for the local runtime's tests: it does what the event asks
(answer, sleep, raise, die), so tests can crash and stall workers on purpose."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

_calls = 0  # module state survives between invocations in one container, as on Lambda


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    global _calls
    _calls += 1
    if "body" in event or "version" in event:  # an HTTP API (payload v2) event
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"length": len(event.get("body") or ""), "body": event.get("body") or ""}),
        }
    action = event.get("action", "echo")
    if action == "sleep":
        time.sleep(float(event["seconds"]))
    elif action == "raise":
        raise ValueError(event.get("message", "asked to fail"))
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "exit":
        os._exit(int(event.get("code", 3)))
    return {"pid": os.getpid(), "calls": _calls, "request_id": context.aws_request_id}
