"""The drop folder (issue 6, item 5): complete files only, once each; results only into DIR/results.

A fake S3 client, real files under tmp_path, and watchdog's real observer (inotify here). Settle
times are small; a test waits for an expected upload, then for a few settle times of quiet."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from swapdrop_local.watch import FolderMirror, Settler, Signature

SETTLE = 0.2
QUIET = SETTLE * 4
RAW_CONTROLS = ("\x1b", "\x07", "\x7f", "\x9b", "\u202e")


class FakeS3:
    """The four calls the mirror makes, recording every upload."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[tuple[str, bytes]] = []
        self.changed = threading.Condition()

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, str]:
        with self.changed:
            self.objects[Key] = bytes(Body)
            self.puts.append((Key, bytes(Body)))
            self.changed.notify_all()
        return {}

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[dict[str, list[dict[str, str]]]]:
        with self.changed:
            listed = sorted((k, v) for k, v in self.objects.items() if k.startswith(Prefix))
        yield {"Contents": [{"Key": k, "ETag": hashlib.sha256(v).hexdigest()} for k, v in listed]}

    def get_object(self, Bucket: str, Key: str) -> dict[str, io.BytesIO]:
        return {"Body": io.BytesIO(self.objects[Key])}

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(check, timeout), f"not within {timeout}s; uploads: {self.keys()}"

    def keys(self) -> list[str]:
        return [key for key, _ in self.puts]


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3()


@pytest.fixture
def running(tmp_path: Path, s3: FakeS3) -> Iterator[FolderMirror]:
    mirror = FolderMirror(tmp_path / "drop", s3, "bkt", interval=0.05, settle=SETTLE).start()
    yield mirror
    mirror.stop()


def _quiet() -> None:
    """Long enough for any further upload to have happened (a few settle times)."""
    time.sleep(QUIET)


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# --- complete files only, once ----------------------------------------------------------------


def test_a_file_written_in_two_halves_with_a_pause_is_one_upload_of_the_whole_file(
    running: FolderMirror, s3: FakeS3
) -> None:
    photo = os.urandom(200_000)
    path = running.root / "inbox" / "w" / "photo.jpg"
    path.parent.mkdir(parents=True)
    # Once a file in the new folder has come through, the folder's own inotify watch exists, so
    # the writer's open and close are seen (a file written in the instant before that watch is
    # added is judged by the settle time alone: see watch.py).
    (path.parent / "probe.jpg").write_bytes(b"probe")
    s3.wait_for(lambda: "inbox/w/probe.jpg" in s3.objects)
    with path.open("wb") as file:
        file.write(photo[:100_000])
        file.flush()
        time.sleep(SETTLE * 2.5)  # the pause of the report: longer than the settle time
        file.write(photo[100_000:])
    s3.wait_for(lambda: len(s3.puts) >= 2)
    _quiet()
    assert s3.puts[1:] == [("inbox/w/photo.jpg", photo)]


def test_two_writes_that_close_in_between_settle_into_one_upload(running: FolderMirror, s3: FakeS3) -> None:
    path = running.root / "inbox" / "w" / "appended.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"first half ")
    time.sleep(SETTLE / 3)
    with path.open("ab") as file:
        file.write(b"second half")
    s3.wait_for(lambda: len(s3.puts) >= 1)
    _quiet()
    assert s3.puts == [("inbox/w/appended.png", b"first half second half")]


def test_a_file_replaced_while_settling_is_uploaded_once_as_its_last_version(running: FolderMirror, s3: FakeS3) -> None:
    path = running.root / "inbox" / "w" / "edited.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"version one")
    time.sleep(SETTLE / 3)
    staged = running.root / "elsewhere.tmp"
    staged.write_bytes(b"version two, same folder")
    os.replace(staged, path)
    s3.wait_for(lambda: len(s3.puts) >= 1)
    _quiet()
    assert s3.puts == [("inbox/w/edited.png", b"version two, same folder")]


def test_many_files_at_once_are_each_uploaded_once_and_whole(running: FolderMirror, s3: FakeS3) -> None:
    bodies = {f"inbox/w/batch/{n:03}.png": os.urandom(20_000 + n) for n in range(60)}
    bodies["faces/w.jpg"] = os.urandom(5_000)

    def write(key: str, body: bytes) -> None:
        target = running.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as file:
            for start in range(0, len(body), 4096):
                file.write(body[start : start + 4096])
                file.flush()

    threads = [threading.Thread(target=write, args=item) for item in bodies.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    s3.wait_for(lambda: len(s3.puts) >= len(bodies))
    _quiet()
    assert sorted(s3.keys()) == sorted(bodies), "each file exactly once"
    assert dict(s3.puts) == bodies, "each one whole"


def test_a_changed_file_is_uploaded_again_and_an_unchanged_one_is_not(running: FolderMirror, s3: FakeS3) -> None:
    face = running.root / "faces" / "w.jpg"
    face.write_bytes(b"face one")
    s3.wait_for(lambda: len(s3.puts) == 1)
    os.utime(face)  # touched, same content and size: a new mtime is a new version
    face.write_bytes(b"face two!")
    s3.wait_for(lambda: len(s3.puts) == 2)
    _quiet()
    assert s3.puts == [("faces/w.jpg", b"face one"), ("faces/w.jpg", b"face two!")]


def test_files_present_before_the_start_are_uploaded(tmp_path: Path, s3: FakeS3) -> None:
    root = tmp_path / "drop"
    (root / "inbox" / "w").mkdir(parents=True)
    (root / "inbox" / "w" / "old.png").write_bytes(b"old photo")
    mirror = FolderMirror(root, s3, "bkt", interval=0.05, settle=SETTLE).start()
    try:
        s3.wait_for(lambda: len(s3.puts) >= 1)
        _quiet()
    finally:
        mirror.stop()
    assert s3.puts == [("inbox/w/old.png", b"old photo")]


def test_hidden_and_temporary_files_are_not_uploaded(running: FolderMirror, s3: FakeS3) -> None:
    folder = running.root / "inbox" / "w"
    folder.mkdir(parents=True)
    for name in (".DS_Store", ".photo.jpg.swp", "photo.jpg.crdownload", "photo.jpg.part"):
        (folder / name).write_bytes(b"not yet")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x.png").write_bytes(b"hidden")
    (folder / "done.jpg").write_bytes(b"done")
    s3.wait_for(lambda: len(s3.puts) >= 1)
    _quiet()
    assert s3.keys() == ["inbox/w/done.jpg"]


def test_sync_once_waits_for_a_file_still_settling(tmp_path: Path, s3: FakeS3) -> None:
    mirror = FolderMirror(tmp_path / "drop", s3, "bkt", settle=SETTLE)
    (mirror.root / "faces" / "w.jpg").write_bytes(b"just written")
    assert mirror.sync_once() == (1, 0)
    assert mirror.sync_once() == (0, 0)
    assert s3.puts == [("faces/w.jpg", b"just written")]


# --- names: uploaded to be REJECTED, or refused when S3 cannot hold them ------------------------


def test_a_name_with_control_characters_is_uploaded_for_a_rejection_and_logged_escaped(
    running: FolderMirror, s3: FakeS3, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local.watch")
    name = "\x1b[2J\x1b[31mred\x07\x7f\u202egnp.png"
    folder = running.root / "inbox" / "w"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(b"img")
    s3.wait_for(lambda: len(s3.puts) >= 1)
    _quiet()
    assert s3.keys() == [f"inbox/w/{name}"], "uploaded, so its job says REJECTED and why"
    (record,) = [r for r in caplog.records if r.getMessage().startswith("uploaded")]
    line = record.getMessage()
    assert "\\x1b[2J\\x1b[31mred\\x07\\x7f\\u202egnp.png" in line
    assert "will be REJECTED" in line and "control or text-direction character" in line
    assert not any(raw in line for raw in RAW_CONTROLS)


def test_names_s3_cannot_hold_stay_local_with_a_log_line(
    running: FolderMirror, s3: FakeS3, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local.watch")
    folder = running.root / "inbox" / "w"
    deep = folder.joinpath(*["d" * 200] * 5)  # a key of 1,000+ bytes; each name fits the filesystem
    deep.mkdir(parents=True)
    (deep / ("x" * 100 + ".png")).write_bytes(b"long")
    os.close(os.open(os.fsencode(folder) + b"/latin1-\xe9t\xe9.png", os.O_CREAT | os.O_WRONLY, 0o644))
    (folder / "fine.png").write_bytes(b"fine")
    s3.wait_for(lambda: len(s3.puts) >= 1)
    _quiet()
    assert s3.keys() == ["inbox/w/fine.png"]
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not uploaded")]
    assert len(refused) == 2
    assert any("over S3's limit of 1,024" in line for line in refused)
    assert any("latin1-\\udce9t\\udce9.png" in line and "not valid UTF-8" in line for line in refused)


# --- results: only into DIR/results, never uploaded again ---------------------------------------


HOSTILE_RESULT_KEYS = [
    "results/w/../../../escaped.png",
    "results/w/../../faces/w.png",
    "results/../inbox/w/x.png",
    "results/w/../../inbox/w/again.png",
    "results//etc/passwd.png",
    "results/w//x.png",
    "results/w/./x.png",
    "results/w/\x1b[31mred.png",
    "results/w/nul\x00.png",
    "results/w/..\\..\\..\\escaped2.png",
    "results/w/\u202egnp.png",
    "results/",
    "faces/w.png",
    "inbox/w/x.png",
]


def test_hostile_result_keys_never_write_outside_dir_results(
    tmp_path: Path, s3: FakeS3, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local.watch")
    mirror = FolderMirror(tmp_path / "drop", s3, "bkt", settle=SETTLE)
    for key in HOSTILE_RESULT_KEYS:
        s3.objects[key] = b"hostile"
    s3.objects["results/w/trip/ok.png"] = b"a real result"
    before = _tree(tmp_path)

    # the listing only asks for results/, but a server may answer anything: offer every key
    original = s3.paginate
    s3.paginate = lambda Bucket, Prefix: original(Bucket, "")  # type: ignore[method-assign]
    assert mirror.sync_once() == (0, 1)

    assert _tree(tmp_path) - before == {"drop/results/w", "drop/results/w/trip", "drop/results/w/trip/ok.png"}
    assert (mirror.root / "results" / "w" / "trip" / "ok.png").read_bytes() == b"a real result"
    assert s3.puts == []
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == len(HOSTILE_RESULT_KEYS)
    for line in refused:
        assert not any(raw in line for raw in (*RAW_CONTROLS, "\x00"))
    assert mirror.sync_once() == (0, 0), "a refused key is said once, not every interval"


@pytest.mark.parametrize("link_to", ["inbox", "faces", "../outside"])
def test_a_symlink_in_results_does_not_lead_a_result_out(
    tmp_path: Path, s3: FakeS3, caplog: pytest.LogCaptureFixture, link_to: str
) -> None:
    mirror = FolderMirror(tmp_path / "drop", s3, "bkt", settle=SETTLE)
    (tmp_path / "outside").mkdir()
    (mirror.root / "results" / "w").symlink_to(mirror.root / link_to, target_is_directory=True)
    s3.objects["results/w/x.png"] = b"result"
    before = _tree(tmp_path)
    assert mirror.sync_once() == (0, 0)
    assert _tree(tmp_path) == before
    assert s3.puts == []
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_results_come_down_and_are_never_uploaded_again(running: FolderMirror, s3: FakeS3) -> None:
    (running.root / "inbox" / "w").mkdir(parents=True)
    (running.root / "inbox" / "w" / "photo.png").write_bytes(b"target")
    s3.wait_for(lambda: len(s3.puts) == 1)
    with s3.changed:
        s3.objects["results/w/photo.png"] = b"swapped"
    result = running.root / "results" / "w" / "photo.png"
    deadline = time.monotonic() + 10
    while not result.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert result.read_bytes() == b"swapped"
    _quiet()
    assert s3.keys() == ["inbox/w/photo.png"]
    assert not (running.root / "faces" / "photo.png").exists()
    assert _tree(running.root / "results") == {"w", "w/photo.png"}, "no temporary file left behind"


def test_results_inside_a_mirrored_folder_are_refused_at_the_start(tmp_path: Path, s3: FakeS3) -> None:
    root = tmp_path / "drop"
    (root / "inbox").mkdir(parents=True)
    (root / "results").symlink_to(root / "inbox", target_is_directory=True)
    with pytest.raises(ValueError, match="overlap"):
        FolderMirror(root, s3, "bkt")


# --- the settle rule on its own, with fake clocks --------------------------------------------------


class Clocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def signature(self, size: int, inode: int = 1, age: float = 0.0) -> Signature:
        return Signature(size, int((self.wall - age) * 1e9), inode)


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def _settler(clocks: Clocks, settle: float = 2.0, grace: float = 30.0) -> Settler:
    return Settler(settle, grace, clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall)


def test_settle_a_file_is_due_once_unchanged_for_the_settle_time(clocks: Clocks) -> None:
    settler, path = _settler(clocks), Path("/d/inbox/w/x.png")
    settler.seen(path, clocks.signature(10))
    clocks.advance(1.9)
    assert settler.due() == [] and settler.next_check() == pytest.approx(0.1)
    clocks.advance(0.1)
    assert settler.due() == [path]


def test_settle_a_change_starts_the_settle_time_again(clocks: Clocks) -> None:
    settler, path = _settler(clocks), Path("/d/inbox/w/x.png")
    settler.seen(path, clocks.signature(10))
    clocks.advance(1.5)
    settler.seen(path, clocks.signature(20))
    clocks.advance(1.5)
    assert settler.due() == []
    clocks.advance(0.5)
    assert settler.due() == [path]


def test_settle_an_open_writer_holds_the_file_past_the_settle_time_until_it_closes(clocks: Clocks) -> None:
    settler, path = _settler(clocks), Path("/d/inbox/w/x.png")
    settler.written(path, clocks.signature(10))
    clocks.advance(2.5)  # a pause in the copy
    assert settler.due() == []
    settler.written(path, clocks.signature(20))
    settler.closed(path, clocks.signature(20))
    assert settler.due() == []
    clocks.advance(2.0)
    assert settler.due() == [path]


def test_settle_a_lost_close_stops_counting_after_the_writer_grace(clocks: Clocks) -> None:
    settler, path = _settler(clocks, grace=30.0), Path("/d/inbox/w/x.png")
    settler.written(path, clocks.signature(10))
    clocks.advance(29.9)
    assert settler.due() == []
    clocks.advance(0.1)
    assert settler.due() == [path]


def test_settle_a_replacement_is_a_new_file_complete_as_renamed(clocks: Clocks) -> None:
    settler, path = _settler(clocks), Path("/d/inbox/w/x.png")
    settler.written(path, clocks.signature(10, inode=1))
    settler.seen(path, clocks.signature(30, inode=2, age=60))  # renamed over it; written a minute ago
    assert settler.due() == [path]


def test_settle_an_old_untouched_file_is_due_at_once_and_a_postponed_one_waits(clocks: Clocks) -> None:
    settler, path = _settler(clocks), Path("/d/inbox/w/x.png")
    settler.seen(path, clocks.signature(10, age=3600))
    assert settler.due() == [path]
    settler.postpone(path)
    assert settler.due() == []
    clocks.advance(2.0)
    assert settler.due() == [path]
    settler.forget(path)
    assert settler.due() == [] and settler.next_check() is None
