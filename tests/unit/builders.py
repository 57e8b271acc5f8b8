"""Builders shared by the unit tests: real image bytes, jobs, snapshots, uploads."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image
from swapdrop.jobs import Job, JobStatus
from swapdrop.submission import Upload
from swapdrop.task_snapshot import TaskSnapshot

BUCKET = "bkt"
CALLBACK_BASE = "https://api.example/callbacks"
CALLBACK_SECRET = "cb-secret-7f3a9c1e5b"
API_KEY = "sk-live-API-KEY-4d9e2b7a"
TASK_ID = "1729072764329123"
CREATED = "2024-10-16T09:59:21.500Z"


# --- images --------------------------------------------------------------------------------


def image_bytes(fmt: str, size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 40)) -> bytes:
    buffer = io.BytesIO()
    mode = "P" if fmt == "GIF" else "RGB"
    Image.new(mode, size, color if mode == "RGB" else 1).save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (8-bit RGB), with a tiny IDAT: header only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


HEIC_HEADER = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32
PDF_BYTES = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


# --- records -------------------------------------------------------------------------------


def make_job(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "jobId": "job-0001",
        "status": JobStatus.PENDING,
        "bucket": BUCKET,
        "targetKey": "inbox/alice/trip/beach.jpg",
        "face": "alice",
        "createdAt": CREATED,
        "updatedAt": CREATED,
    }
    values.update(overrides)
    # The outbox flags of the record before `deliveries`: read as an old item would be.
    legacy_names = ("eventPending", "resultCopyAttempts", "resultCopyError")
    legacy = {name: values.pop(name) for name in legacy_names if name in values}
    job = Job(**values)
    if legacy or (job.status.is_terminal and "deliveries" not in values):
        return Job.from_item(job.to_item() | legacy)
    return job


def snap(status: str, progress: Any = None, task_id: str = TASK_ID, **fields: Any) -> TaskSnapshot:
    """A task snapshot as the upstream sends it (camelCase fields, progress like '45%')."""
    body: dict[str, Any] = {"id": task_id, "action": "SWAP_FACE", "status": status}
    if progress is not None:
        body["progress"] = progress
    body.update(fields)
    return TaskSnapshot.model_validate(body)


def snapshot_body(status: str, job_id: str, progress: str = "", task_id: str = TASK_ID, **fields: Any) -> dict:
    body: dict[str, Any] = {
        "id": task_id,
        "action": "SWAP_FACE",
        "status": status,
        "state": job_id,
        "progress": progress,
        "submitTime": 1729072764329,
        "imageUrl": None,
        "failReason": None,
        "properties": {},
        "botType": "INSIGHT_FACE",
    }
    body.update(fields)
    return body


def upload(
    key: str, bucket: str = BUCKET, sequencer: str = "00670F8E19D1F5E2A1", version_id: str | None = None
) -> Upload:
    return Upload(bucket=bucket, key=key, sequencer=sequencer, version_id=version_id)
