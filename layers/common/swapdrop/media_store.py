"""The only module that talks to S3: reading faces and targets, writing results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

MAX_LISTED_KEYS = 10_000
"""A bound on one listing (faces/<face>.*), far above any real face folder."""
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "AccessDenied", "403"})


_RETRY_WRITE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"})
MAX_RESULT_WRITE_TRIES = 5


@dataclass(frozen=True, slots=True)
class TargetOrder:
    """Which upload of one inbox key came later, as S3 told us: the event's sequencer (S3 orders
    events for the same key by it), else the event time. Kept on the result as object metadata."""

    sequencer: str | None = None
    event_time: str | None = None

    def newer_than(self, other: TargetOrder) -> bool:
        if self.sequencer and other.sequencer:
            try:
                return int(self.sequencer, 16) > int(other.sequencer, 16)
            except ValueError:
                pass
        if self.event_time and other.event_time:
            return self.event_time > other.event_time
        return False  # unknown: never a reason to keep an older result

    def to_metadata(self) -> dict[str, str]:
        fields = {"target-sequencer": self.sequencer, "target-event-time": self.event_time}
        return {k: v for k, v in fields.items() if v}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> TargetOrder:
        return cls(metadata.get("target-sequencer"), metadata.get("target-event-time"))


@dataclass(frozen=True, slots=True)
class ResultWrite:
    version_id: str | None = None
    """The S3 VersionId written (None on an unversioned bucket, or when superseded)."""
    superseded_by: str | None = None
    """The job id whose newer result is in place; nothing was written."""


class ResultWriteContended(RuntimeError):
    """Other writers kept changing the result key; the copy is retried later."""


class ObjectMissing(LookupError):
    pass


class ObjectTooLarge(ValueError):
    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(key)
        self.key, self.size, self.limit = key, size, limit


class MediaStore(Protocol):
    def list_keys(self, prefix: str) -> list[str]: ...

    def read(self, key: str, max_bytes: int, version_id: str | None = None) -> bytes:
        """The object's bytes (that version, if given); ObjectMissing, or ObjectTooLarge before
        downloading a large one."""

    def write(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None: ...

    def write_result(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str], order: TargetOrder
    ) -> ResultWrite:
        """Write unless the result in place came from a newer upload of the same target (compare-and-set)."""


class S3MediaStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        request = {"Bucket": self._bucket, "Prefix": prefix}
        while len(keys) < MAX_LISTED_KEYS:
            page = self._s3.list_objects_v2(**request)
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
        return keys

    def read(self, key: str, max_bytes: int, version_id: str | None = None) -> bytes:
        request = {"Bucket": self._bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            response = self._s3.get_object(**request)
        except ClientError as error:
            # Without an unconditional s3:ListBucket (the functions may list faces/ only), S3
            # answers a missing key with AccessDenied rather than NoSuchKey.
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectMissing(key) from error
            raise
        body = response["Body"]
        try:
            size = int(response.get("ContentLength", 0))
            if size > max_bytes:
                raise ObjectTooLarge(key, size, max_bytes)
            data = body.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ObjectTooLarge(key, len(data), max_bytes)
            return data
        finally:
            body.close()

    def write(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata)

    def write_result(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str], order: TargetOrder
    ) -> ResultWrite:
        # First try as the only writer (If-None-Match: one call in the usual case); if a result is there,
        # read its order and replace it only if it is not newer, only as read (If-Match on its ETag).
        condition: dict[str, str] = {"IfNoneMatch": "*"}
        for _ in range(MAX_RESULT_WRITE_TRIES):
            try:
                response = self._s3.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    Metadata=metadata | order.to_metadata(),
                    **condition,
                )
                return ResultWrite(version_id=response.get("VersionId"))
            except ClientError as error:
                if _code(error) not in _RETRY_WRITE:
                    raise
            try:
                head = self._s3.head_object(Bucket=self._bucket, Key=key)
            except ClientError as error:
                if _code(error) not in _MISSING:
                    raise
                condition = {"IfNoneMatch": "*"}
                continue
            existing = head.get("Metadata", {})
            if TargetOrder.from_metadata(existing).newer_than(order):
                return ResultWrite(superseded_by=existing.get("job-id", "another job"))
            condition = {"IfMatch": head["ETag"]}
        raise ResultWriteContended(key)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
