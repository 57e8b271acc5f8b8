"""`swapdrop swap` target expansion: files, folders (recursive, images only), s3:// and https://,
batching with idempotency keys, and result paths that never leave --out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.targets import (
    SwapTarget,
    batch_idempotency_key,
    batches,
    expand_targets,
    output_path,
    result_relative,
    sniff_content_type,
    unique_relatives,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


def _write(path: Path, data: bytes = JPEG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _expand(*arguments: str | Path, bucket: str | None = "swap-bucket") -> tuple[list[SwapTarget], list[str]]:
    notes: list[str] = []
    return expand_targets([str(a) for a in arguments], bucket, notes.append), notes


def _usage_error(*arguments: str | Path, bucket: str | None = "swap-bucket") -> str:
    with pytest.raises(CliError) as raised:
        _expand(*arguments, bucket=bucket)
    assert raised.value.exit_code == ExitCode.USAGE
    return raised.value.message


def test_magic_bytes_decide_the_type_not_the_extension(tmp_path: Path) -> None:
    assert sniff_content_type(_write(tmp_path / "a.png", JPEG)) == "image/jpeg"
    assert sniff_content_type(_write(tmp_path / "b.jpg", PNG)) == "image/png"
    assert sniff_content_type(_write(tmp_path / "c.webp", WEBP)) == "image/webp"
    assert sniff_content_type(_write(tmp_path / "d.jpg", b"GIF89a" + b"\x00" * 20)) is None
    assert sniff_content_type(_write(tmp_path / "e.jpg", b"")) is None


def test_a_file_keeps_its_name_and_its_sniffed_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep" / "Beach.JPG", PNG)
    (target,), notes = _expand(path)
    assert (target.relative, target.path, target.content_type, target.kind) == ("Beach.JPG", path, "image/png", "file")
    assert target.request() == {"upload": {"contentType": "image/png"}}
    assert notes == []


def test_a_folder_is_walked_recursively_for_images_only(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _write(root / "a.jpg")
    _write(root / "trip" / "day1" / "b.png", PNG)
    _write(root / "trip" / "c.webp", WEBP)
    _write(root / "notes.txt", b"hello")
    _write(root / "fake.jpg", b"not an image at all")
    _write(root / "trip" / "raw.gif", b"GIF89a")
    targets, notes = _expand(root)
    assert [t.relative for t in targets] == ["a.jpg", "trip/c.webp", "trip/day1/b.png"]
    assert [t.content_type for t in targets] == ["image/jpeg", "image/webp", "image/png"]
    assert len(notes) == 3
    assert any("notes.txt" in n and "not an image" in n for n in notes)
    assert any("fake.jpg" in n and "is not a JPEG, PNG or WebP" in n for n in notes)
    assert any("raw.gif" in n for n in notes)


def test_hidden_files_and_folders_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _write(root / "a.jpg")
    _write(root / "._a.jpg")  # macOS AppleDouble: named like an image
    _write(root / ".git" / "b.jpg")
    _write(root / ".DS_Store", b"\x00\x00\x00\x01Bud1")
    targets, notes = _expand(root)
    assert [t.relative for t in targets] == ["a.jpg"]
    assert notes == []


def test_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _write(root / "a.jpg")
    _write(root / "sub" / "b.jpg")
    os.symlink(root, root / "sub" / "back-up")
    os.symlink(root / "sub", root / "again")
    os.symlink(tmp_path / "nowhere.jpg", root / "broken.jpg")
    targets, notes = _expand(root)
    # b.jpg once, through whichever name comes first ('again' sorts before 'sub'); no endless walk
    assert [t.relative for t in targets] == ["a.jpg", "again/b.jpg"]
    assert any("already walked" in n for n in notes)
    assert any("broken.jpg" in n and "broken link" in n for n in notes)


def test_names_with_control_characters_are_skipped_in_folders_and_refused_alone(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _write(root / "ok.jpg")
    evil = _write(root / "evil\x1b[31m.jpg")
    targets, notes = _expand(root)
    assert [t.relative for t in targets] == ["ok.jpg"]
    assert len(notes) == 1 and "\\x1b" in notes[0] and "\x1b" not in notes[0]
    message = _usage_error(evil)
    assert "\\x1b" in message and "\x1b" not in message


def test_dot_dot_in_an_argument_only_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "x.jpg")
    (tmp_path / "sub").mkdir()
    (target,), _ = _expand(tmp_path / "sub" / ".." / "x.jpg")
    assert target.relative == "x.jpg"


def test_missing_files_and_non_images_given_by_name_are_usage_errors(tmp_path: Path) -> None:
    assert "no such file or folder" in _usage_error(tmp_path / "missing.jpg")
    assert "does not end in" in _usage_error(_write(tmp_path / "doc.txt", b"x"))
    assert "is not a JPEG, PNG or WebP" in _usage_error(_write(tmp_path / "liar.jpg", b"plain text"))


def test_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty" / "readme.txt", b"x")
    assert "no images" in _usage_error(tmp_path / "empty")


def test_s3_keys_must_be_in_the_stacks_bucket() -> None:
    (target,), _ = _expand("s3://swap-bucket/inbox/trip/beach.jpg")
    assert (target.kind, target.s3_key, target.relative) == ("s3", "inbox/trip/beach.jpg", "beach.jpg")
    assert target.request() == {"s3Key": "inbox/trip/beach.jpg"}
    message = _usage_error("s3://someone-else/beach.jpg")
    assert "someone-else" in message and "not the stack's bucket (swap-bucket)" in message
    assert "is not s3://BUCKET/KEY" in _usage_error("s3://swap-bucket/")
    assert "'..'" in _usage_error("s3://swap-bucket/inbox/../x.jpg")


def test_https_urls_are_sent_and_http_refused() -> None:
    (target,), _ = _expand("https://example.com/pics/sunny%20day.png?sig=1")
    assert (target.kind, target.relative) == ("url", "sunny day.png")
    assert target.request() == {"url": "https://example.com/pics/sunny%20day.png?sig=1"}
    (bare,), _ = _expand("https://example.com/")
    assert bare.relative == "target"
    (sneaky,), _ = _expand("https://example.com/a/%2e%2e")
    assert sneaky.relative == "target"
    message = _usage_error("http://example.com/a.jpg")
    assert "plain-http" in message and "https://" in message
    assert "not a target" in _usage_error("ftp://example.com/a.jpg")


def test_result_paths_never_collide(tmp_path: Path) -> None:
    targets = [
        SwapTarget(shown=name, relative=name, s3_key=name)
        for name in ("beach.jpg", "beach.png", "Beach.webp", "trip/beach.jpg", "target", "target")
    ]
    relatives = [t.relative for t in unique_relatives(targets)]
    assert relatives == ["beach.jpg", "beach.png.png", "Beach.webp.webp", "trip/beach.jpg", "target", "target-2"]
    assert result_relative("trip/beach.jpg", "png") == "trip/beach.png"
    assert result_relative("beach.png.png", "png") == "beach.png.png"
    assert result_relative("target", "webp") == "target.webp"


def test_batches_of_at_most_100_and_their_idempotency_keys() -> None:
    targets = [SwapTarget(shown=str(n), relative=f"{n}.jpg", s3_key=f"{n}.jpg") for n in range(250)]
    split = batches(targets)
    assert [len(b) for b in split] == [100, 100, 50]
    assert [t for b in split for t in b] == targets
    assert [batch_idempotency_key("K", i) for i in range(3)] == ["K", "K-2", "K-3"]
    assert batch_idempotency_key(None, 1) is None


@pytest.mark.parametrize(
    "relative",
    ["../escape.png", "a/../../escape.png", "/etc/passwd", "a//b.png", "./a.png", "a\\..\\b.png", "a/\x00.png", ""],
)
def test_output_paths_never_leave_out(tmp_path: Path, relative: str) -> None:
    with pytest.raises(CliError) as raised:
        output_path(tmp_path / "out", relative)
    assert raised.value.exit_code == ExitCode.USAGE


def test_output_paths_do_not_follow_links_out_of_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "trip")
    with pytest.raises(CliError, match="a link out of"):
        output_path(out, "trip/beach.png")
    assert output_path(out, "new/deep/beach.png") == out.resolve() / "new" / "deep" / "beach.png"
