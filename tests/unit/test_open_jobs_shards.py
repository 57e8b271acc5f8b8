"""The sharded OpenJobs index: the key every open job carries, and the move of jobs written before the
shards (listed by the unsharded OpenJobs index) that the reconciler makes on its first run after the deploy."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

from swapdrop.jobs import OPEN_SHARDS, JobStatus, iso, open_partitions, open_shard
from swapdrop.result_download import DownloadedImage

from .builders import make_job
from .conftest import World

URL = "https://cdn.example/r/legacy.png"


def test_open_shards_are_stable_in_range_and_spread() -> None:
    ids = [f"{n:032x}" for n in range(4000)]
    shards = Counter(open_shard(job_id) for job_id in ids)
    assert set(shards) == set(open_partitions()) and len(shards) == OPEN_SHARDS
    assert max(shards.values()) < 1.25 * len(ids) / OPEN_SHARDS, shards
    assert open_shard("job-0001") == open_shard("job-0001")


def test_an_open_job_carries_its_shard_and_no_legacy_flag() -> None:
    item = make_job(status=JobStatus.SUBMITTED, taskId="T").to_item()
    assert item["openShard"] == open_shard("job-0001")
    assert "openFlag" not in item


def legacy(world: World, job_id: str, status: JobStatus, **fields: object) -> dict:
    """An item as the code before the shards wrote it: openFlag = OPEN, no openShard."""
    stamp = iso(world.clock() - timedelta(minutes=5))
    job = make_job(jobId=job_id, status=status, createdAt=stamp, updatedAt=stamp, attempts=1, **fields)
    item = job.to_item()
    if item.pop("openShard", None) is not None:
        item["openFlag"] = "OPEN"
    world.jobs.items[job_id] = item
    return item


def test_the_reconciler_moves_a_legacy_open_job_to_its_shard_and_still_polls_it(world: World) -> None:
    legacy(world, "old-open", JobStatus.SUBMITTED, taskId="T-old")

    report = world.reconciler().run()

    item = world.jobs.item("old-open")
    assert "openFlag" not in item and item["openShard"] == open_shard("old-open")
    assert report.moved == 1 and report.examined == 1
    assert world.poller.calls == [["T-old"]], "moved, and reconciled in the same run"
    assert world.reconciler().run().moved == 0, "moved once: the legacy index lists it no more"


def test_a_legacy_terminal_job_with_outbox_work_is_moved_then_finished(world: World, images: SimpleNamespace) -> None:
    world.downloader.results[URL] = DownloadedImage(images.png, "png", "image/png")
    legacy(world, "old-done", JobStatus.SUCCESS, taskId="T", imageUrl=URL, eventPending=True)

    report = world.reconciler().run()

    item = world.jobs.item("old-done")
    assert report.moved == 1 and report.finished == 1
    assert not {"openFlag", "openShard"} & set(item), "finished: in no open index"
    assert item["resultKey"] and len(world.events.published) == 1


def test_a_stale_shard_key_on_a_finished_job_is_written_away(world: World) -> None:
    """Code before the shards keeps attributes it does not know: a job it finished may keep openShard."""
    world.jobs.stale_index_keys_allowed = True
    stamp = iso(world.clock() - timedelta(minutes=5))
    item = make_job(jobId="kept", status=JobStatus.FAILURE, failReason="x", createdAt=stamp, updatedAt=stamp).to_item()
    item["deliveries"]["event"] = {"state": "done", "attempts": 1}
    item["openShard"] = open_shard("kept")
    world.jobs.items["kept"] = item
    writes = len(world.jobs.writes)

    world.reconciler().run()

    assert "openShard" not in world.jobs.item("kept")
    assert len(world.jobs.writes) - writes == 1
    assert list(world.jobs.open_jobs(updated_before=iso(world.clock()))) == []
