"""The only module that talks to S3: reading faces and targets, writing results."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

MAX_LISTED_KEYS = 10_000
"""A bound on one listing (faces/<face>.*), far above any real face folder."""
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "AccessDenied", "403"})


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
