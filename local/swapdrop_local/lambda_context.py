"""A LambdaContext stand-in, so handlers run locally exactly as they do on Lambda."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalLambdaContext:
    function_name: str
    timeout_seconds: int = 60
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        """As Lambda's: the group the runtime's environment names (the template's LoggingConfig locally)."""
        return os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME") or f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))
