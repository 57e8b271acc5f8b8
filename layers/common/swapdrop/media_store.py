"""The only module that talks to S3: reading faces and targets, writing results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What HeadObject (or a listing) tells about one object, without its bytes."""

    key: str
    size: int
    version_id: str | None = None
    content_type: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class ObjectPage:
    objects: list[ObjectInfo]
    next_after: str | None
    """The last key of this page when more follow (S3's StartAfter for the next one), else None."""


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

    def head(self, key: str) -> ObjectInfo | None:
        """Size, version and content type of the object, or None when it does not exist."""

    def list_objects(self, prefix: str, after: str | None, limit: int) -> ObjectPage: ...

    def delete_keys(self, keys: list[str]) -> None: ...

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        """{"url", "fields"}: a form that uploads exactly `key`, with that Content-Type, 1..max_bytes long."""

    def presigned_get(self, key: str, expires_in: int, version_id: str | None = None) -> str: ...


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

    def head(self, key: str) -> ObjectInfo | None:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(head.get("ContentLength", 0)),
            version_id=head.get("VersionId"),
            content_type=head.get("ContentType"),
            last_modified=head.get("LastModified"),
        )

    def list_objects(self, prefix: str, after: str | None, limit: int) -> ObjectPage:
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": limit}
        if after:
            request["StartAfter"] = after
        page = self._s3.list_objects_v2(**request)
        objects = [
            ObjectInfo(key=obj["Key"], size=int(obj.get("Size", 0)), last_modified=obj.get("LastModified"))
            for obj in page.get("Contents", [])
        ]
        more = bool(page.get("IsTruncated")) and bool(objects)
        return ObjectPage(objects=objects, next_after=objects[-1].key if more else None)

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a call
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        return self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )

    def presigned_get(self, key: str, expires_in: int, version_id: str | None = None) -> str:
        params = {"Bucket": self._bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
