"""The submitter's per-container cache of face lookups (Submitter._resolve_face).

A found face key is kept for FACE_CACHE_SECONDS and confirmed with a HEAD instead of a LIST per
job; a face deleted or renamed since is listed again; a miss is never kept; an ambiguity added
meanwhile is seen once the entry expires. Every answer is the one a fresh lookup would give.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fakes import FakeMediaStore
from swapdrop.media_store import ObjectInfo
from swapdrop.submission import Outcome, Submitter
from swapdrop.upstream import Accepted

from .builders import upload
from .conftest import World


class CountingMedia(FakeMediaStore):
    def __init__(self) -> None:
        super().__init__()
        self.lists: list[str] = []
        self.heads: list[str] = []

    def list_keys(self, prefix: str) -> list[str]:
        self.lists.append(prefix)
        return super().list_keys(prefix)

    def head(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        return super().head(key)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def container(world: World, images: SimpleNamespace) -> SimpleNamespace:
    """One container's Submitter (its cache lives as long as it does), on a counting media store."""
    world.media = CountingMedia()
    world.media.put("faces/alice.jpg", images.jpeg)
    ticks = Ticks()
    submitter = world.submitter(monotonic=ticks)
    return SimpleNamespace(world=world, media=world.media, submitter=submitter, ticks=ticks, images=images, job_ids={})


def submit(c: SimpleNamespace, name: str, submitter: Submitter | None = None) -> tuple[Outcome, str]:
    key = f"inbox/alice/{name}.png"
    c.media.put(key, c.images.png)
    c.world.gateway.script(Accepted(f"T-{name}", 0, 1, "ok"))
    result = (submitter or c.submitter).submit(upload(key), 900)
    c.job_ids[name] = result.job_id
    return result.outcome, result.detail


def source_of(c: SimpleNamespace, name: str) -> str | None:
    job = c.world.jobs.get(c.job_ids[name])
    assert job is not None
    return job.sourceKey


def test_the_second_job_for_a_face_heads_the_kept_key_instead_of_listing(container: SimpleNamespace) -> None:
    assert submit(container, "one")[0] is Outcome.SUBMITTED
    listed = len(container.media.lists)
    assert listed >= 1 and container.media.heads == []

    assert submit(container, "two")[0] is Outcome.SUBMITTED

    assert len(container.media.lists) == listed, "no LIST for the second job"
    assert container.media.heads == ["faces/alice.jpg"]
    assert source_of(container, "two") == "faces/alice.jpg"


def test_a_face_deleted_since_is_listed_again_and_rejected_as_a_fresh_lookup_would(
    container: SimpleNamespace,
) -> None:
    submit(container, "one")
    listed = len(container.media.lists)
    del container.media.objects["faces/alice.jpg"]

    outcome, detail = submit(container, "two")

    assert outcome is Outcome.REJECTED
    assert detail.startswith("no face named 'alice': upload faces/alice.jpg")
    assert len(container.media.lists) > listed


def test_a_face_renamed_since_is_found_under_its_new_name(container: SimpleNamespace) -> None:
    submit(container, "one")
    del container.media.objects["faces/alice.jpg"]
    container.media.put("faces/alice.png", container.images.jpeg)

    assert submit(container, "two")[0] is Outcome.SUBMITTED
    assert source_of(container, "two") == "faces/alice.png"


def test_a_miss_is_not_kept_so_a_face_uploaded_after_a_rejection_is_found_at_once(
    container: SimpleNamespace,
) -> None:
    saved = container.media.objects.pop("faces/alice.jpg")
    assert submit(container, "one")[0] is Outcome.REJECTED
    container.media.put("faces/alice.jpg", saved)

    assert submit(container, "two")[0] is Outcome.SUBMITTED
    assert container.media.heads == [], "nothing was kept to confirm"


def test_an_ambiguity_added_meanwhile_is_seen_when_the_entry_expires(container: SimpleNamespace) -> None:
    submit(container, "one")
    container.media.put("faces/alice.png", container.images.jpeg)
    container.ticks.now += Submitter.FACE_CACHE_SECONDS

    outcome, detail = submit(container, "two")

    assert outcome is Outcome.REJECTED
    assert "face 'alice' is ambiguous" in detail


def test_each_container_keeps_its_own(container: SimpleNamespace) -> None:
    submit(container, "one")
    listed = len(container.media.lists)
    other = container.world.submitter()

    assert submit(container, "two", submitter=other)[0] is Outcome.SUBMITTED

    assert len(container.media.lists) > listed, "a new container lists"
    assert source_of(container, "two") == "faces/alice.jpg"
