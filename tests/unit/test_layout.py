"""layout: the S3 key contract (faces/, inbox/, results/) and job ids."""

from __future__ import annotations

import pytest
from swapdrop.layout import (
    InboxTarget,
    LayoutError,
    decode_event_key,
    face_key_candidates_prefix,
    job_id_for,
    match_face_keys,
    parse_inbox_key,
    result_key,
)


@pytest.mark.parametrize(
    ("key", "face", "path", "extension"),
    [
        ("inbox/alice/beach.jpg", "alice", "beach", "jpg"),
        ("inbox/alice/summer trip/beach day.jpeg", "alice", "summer trip/beach day", "jpeg"),
        ("inbox/alice/café + friends.png", "alice", "café + friends", "png"),
        ("inbox/bob+carol/a+b.webp", "bob+carol", "a+b", "webp"),
        ("inbox/日本/東京/夜景.jpg", "日本", "東京/夜景", "jpg"),
        ("inbox/alice/2024/10/16/deep/nested/shot.png", "alice", "2024/10/16/deep/nested/shot", "png"),
        ("inbox/alice/IMG_0001.JPG", "alice", "IMG_0001", "jpg"),
        ("inbox/alice/scan.WebP", "alice", "scan", "webp"),
        ("inbox/alice/v1.2/photo.final.jpg", "alice", "v1.2/photo.final", "jpg"),
    ],
)
def test_parse_inbox_key_accepts(key: str, face: str, path: str, extension: str) -> None:
    assert parse_inbox_key(key) == InboxTarget(key=key, face=face, path=path, extension=extension)


@pytest.mark.parametrize(
    ("key", "expected_fragments"),
    [
        ("faces/alice.jpg", ["'faces/alice.jpg'", "not under inbox/"]),
        ("results/alice/x.jpg", ["not under inbox/"]),
        ("inbox/x.jpg", ["'inbox/x.jpg'", "not in a face folder", "inbox/<face>/"]),
        ("inbox//x.jpg", ["not in a face folder"]),
        ("inbox/alice/anim.gif", ["'.gif'", ".jpg, .jpeg, .png, .webp"]),
        ("inbox/alice/README", ["no extension", ".jpg"]),
        ("inbox/alice/", ["no extension"]),
        ("inbox/alice/.jpg", ["no file name before '.jpg'"]),
        ("inbox/alice/trip/.png", ["no file name before '.png'"]),
        ("inbox/../x.jpg", ["'..' is not a usable face name"]),
        ("inbox/" + "f" * 129 + "/x.jpg", ["longer than 128 characters"]),
    ],
)
def test_parse_inbox_key_rejects_with_a_readable_reason(key: str, expected_fragments: list[str]) -> None:
    with pytest.raises(LayoutError) as raised:
        parse_inbox_key(key)
    for fragment in expected_fragments:
        assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("inbox/alice/summer+trip.jpg", "inbox/alice/summer trip.jpg"),
        ("inbox/alice/a%2Bb.jpg", "inbox/alice/a+b.jpg"),
        ("inbox/alice/caf%C3%A9.jpg", "inbox/alice/café.jpg"),
        ("inbox/alice/a%2Fb.jpg", "inbox/alice/a/b.jpg"),
        ("inbox/%E6%97%A5%E6%9C%AC/x.jpg", "inbox/日本/x.jpg"),
        (
            "inbox/alice/summer+trip/caf%C3%A9+%2B+friends.jpg",
            "inbox/alice/summer trip/café + friends.jpg",
        ),
    ],
)
def test_decode_event_key(raw: str, decoded: str) -> None:
    assert decode_event_key(raw) == decoded


def test_match_face_keys_keeps_only_that_faces_images() -> None:
    listed = [
        "faces/alice.backup.jpg",
        "faces/alicexyz.jpg",
        "faces/alice.gif",
        "faces/alice.JPG",
        "faces/alice.",
        "faces/bob.jpg",
    ]
    assert match_face_keys("alice", listed) == ["faces/alice.JPG"]


def test_match_face_keys_returns_every_candidate_sorted() -> None:
    listed = ["faces/alice.webp", "faces/alice.png", "faces/alice.jpeg", "faces/alice.jpg"]
    assert match_face_keys("alice", listed) == sorted(listed)
    assert face_key_candidates_prefix("alice") == "faces/alice."


def test_result_key_keeps_face_and_relative_path_and_uses_the_results_extension() -> None:
    target = parse_inbox_key("inbox/alice/summer trip/café + friends.JPG")
    assert result_key(target, "png") == "results/alice/summer trip/café + friends.png"


def test_job_id_is_deterministic_and_distinct_per_input() -> None:
    base = job_id_for("bkt", "inbox/alice/a.jpg", "00670F8E19D1F5E2A1")
    assert base == job_id_for("bkt", "inbox/alice/a.jpg", "00670F8E19D1F5E2A1")
    variants = {
        job_id_for("bkt", "inbox/alice/a.jpg", "00670F8E19D1F5E2A2"),
        job_id_for("bkt", "inbox/alice/a.jpg", "096fKKXTRTtl3on89fVO.nfljtsv6qko"),
        job_id_for("bkt", "inbox/alice/b.jpg", "00670F8E19D1F5E2A1"),
        job_id_for("other", "inbox/alice/a.jpg", "00670F8E19D1F5E2A1"),
        # no ambiguity from concatenation: the separator keeps the parts apart
        job_id_for("bk", "tinbox/alice/a.jpg", "00670F8E19D1F5E2A1"),
    }
    assert base not in variants
    assert len(variants) == 5
    assert len(base) == 32
    assert all(c in "0123456789abcdef" for c in base)
