"""The pipeline end to end on the local stack, with a real face swap."""

from __future__ import annotations

import io
import uuid

import numpy as np
from PIL import Image
from swapdrop.jobs import JobStatus
from swapdrop_local.stack import RunningStack

from e2e.conftest import Client


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_upload_to_swapped_result_through_callbacks(client: Client, fixture_photos: dict[str, bytes]) -> None:
    face = _unique("grace")
    client.put(f"faces/{face}.jpg", fixture_photos["grace_hopper.jpg"])
    key = f"inbox/{face}/space trip/astro naut.png"
    client.put(key, fixture_photos["astronaut.png"])
    job = client.wait_for(key)
    assert job.status is JobStatus.SUCCESS, job.failReason
    assert job.progress == 100 and job.taskId and job.imageUrl
    assert job.resultKey == f"results/{face}/space trip/astro naut.png"
    result, target = _pixels(client.read(job.resultKey)), _pixels(fixture_photos["astronaut.png"])
    assert result.shape == target.shape
    changed = np.abs(result - target).max(axis=2) > 12
    assert 0.01 < changed.mean() < 0.25, "the face changed, not the whole picture"
    ys, xs = np.nonzero(changed)
    height, width = changed.shape
    assert ys.min() > 0.02 * height and xs.min() > 0.05 * width, "the image border is untouched"


def test_keys_with_spaces_plus_signs_and_unicode(client: Client, fixture_photos: dict[str, bytes]) -> None:
    face = _unique("zoë+ann")
    client.put(f"faces/{face}.JPG", fixture_photos["grace_hopper.jpg"])
    key = f"inbox/{face}/été 2026/a + b = 日本.png"
    client.put(key, fixture_photos["astronaut.png"])
    job = client.wait_for(key)
    assert job.status is JobStatus.SUCCESS, job.failReason
    assert job.face == face and job.sourceKey == f"faces/{face}.JPG"
    assert job.resultKey == f"results/{face}/été 2026/a + b = 日本.png"
    assert client.read(job.resultKey)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rejected_upload_has_a_reason_and_is_never_sent(
    client: Client, local_stack: RunningStack, fixture_photos: dict[str, bytes]
) -> None:
    submitted_before = len(local_stack.emulator.swaps)
    key = f"inbox/{_unique('nobody')}/x.png"
    client.put(key, fixture_photos["astronaut.png"])
    job = client.wait_for(key)
    assert job.status is JobStatus.REJECTED
    assert "no face named" in job.failReason
    assert len(local_stack.emulator.swaps) == submitted_before


def test_a_target_without_a_face_fails_with_the_engine_reason(client: Client, fixture_photos: dict[str, bytes]) -> None:
    face = _unique("grace")
    client.put(f"faces/{face}.jpg", fixture_photos["grace_hopper.jpg"])
    key = f"inbox/{face}/landscape.jpg"
    client.put(key, fixture_photos["no_face.jpg"])
    job = client.wait_for(key)
    assert job.status is JobStatus.FAILURE
    assert "no face" in job.failReason.lower()


def test_the_reconciler_finishes_jobs_when_callbacks_never_come(
    client: Client, local_stack: RunningStack, fixture_photos: dict[str, bytes]
) -> None:
    local_stack.emulator.faults.next_submits.append("ignore_notify_hook")
    face = _unique("grace")
    client.put(f"faces/{face}.jpg", fixture_photos["grace_hopper.jpg"])
    key = f"inbox/{face}/silent.png"
    client.put(key, fixture_photos["astronaut.png"])
    job = client.wait_for(key, timeout=90)
    assert job.status is JobStatus.SUCCESS and job.resultKey
    task = local_stack.emulator.tasks[job.taskId]
    assert task.callbacks_sent == 0
    assert any(job.taskId in ids for ids in local_stack.emulator.list_requests)


def test_a_watched_folder_is_a_drop_folder(
    client: Client, local_stack: RunningStack, fixture_photos: dict[str, bytes], tmp_path
) -> None:
    from swapdrop_local.watch import FolderMirror

    face = _unique("folder")
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / f"{face}.jpg").write_bytes(fixture_photos["grace_hopper.jpg"])
    (tmp_path / "inbox" / face / "my trip").mkdir(parents=True)
    (tmp_path / "inbox" / face / "my trip" / "astro.png").write_bytes(fixture_photos["astronaut.png"])
    mirror = FolderMirror(tmp_path, client.s3, client.info["bucket"])
    uploaded, _ = mirror.sync_once()  # (results of earlier jobs on this stack come down too)
    assert uploaded == 2
    assert mirror.sync_once() == (0, 0), "unchanged files are not uploaded again, nor results fetched again"
    job = client.wait_for(f"inbox/{face}/my trip/astro.png")
    assert job.status is JobStatus.SUCCESS
    mirror.sync_once()
    result = tmp_path / "results" / face / "my trip" / "astro.png"
    assert result.read_bytes() == client.read(job.resultKey)
