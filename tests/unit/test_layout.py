"""layout: the S3 key contract (faces/, inbox/, results/) and job ids."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from swapdrop.layout import (
    MAX_KEY_BYTES,
    InboxTarget,
    LayoutError,
    api_result_base,
    decode_event_key,
    describe_face_keys,
    face_key_candidate_prefixes,
    face_key_candidates_prefix,
    job_id_for,
    key_problem,
    match_face_keys,
    parse_inbox_key,
    printable,
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


# --- hostile keys (issue 6, item 5) ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected_fragments"),
    [
        ("inbox/hostile/../../faces/hostile.png", ["'..' path segment"]),
        ("inbox/w/../../../escaped.png", ["'..' path segment"]),
        ("inbox/w/trip/..", ["no extension"]),
        ("inbox/w/../x.jpg", ["'..' path segment"]),
        ("inbox/w/./x.jpg", ["'.' path segment"]),
        ("inbox/w/trip//x.jpg", ["empty folder name"]),
        ("inbox/w/a\x1b[31mred\x1b[0m.png", ["control or text-direction character '\\x1b'", "at character 10"]),
        ("inbox/w/\x00.png", ["'\\x00'"]),
        ("inbox/w/bell\x07.png", ["'\\x07'"]),
        ("inbox/w/del\x7f.png", ["'\\x7f'"]),
        ("inbox/w/csi\x9b31m.png", ["'\\x9b'"]),
        ("inbox/w/new\nline.png", ["'\\x0a'"]),
        ("inbox/w/cr\r.png", ["'\\x0d'"]),
        ("inbox/w/evil\u202egnp.jpg", ["'\\u202e'"]),
        ("inbox/w/isolate\u2066x.jpg", ["'\\u2066'"]),
        ("inbox/w/sep\u2028x.jpg", ["'\\u2028'"]),
        ("inbox/w\x1b/x.jpg", ["'\\x1b'"]),
        ("inbox/w/a\\b.png", ["backslash"]),
        ("inbox/w/..\\..\\x.png", ["backslash"]),
        ("inbox/w/" + "x" * 1100 + ".png", ["1,112 bytes", "1,024 bytes"]),
    ],
)
def test_hostile_inbox_keys_are_refused_with_a_specific_reason(key: str, expected_fragments: list[str]) -> None:
    with pytest.raises(LayoutError) as raised:
        parse_inbox_key(key)
    message = str(raised.value)
    for fragment in expected_fragments:
        assert fragment in message
    assert printable(message) == message.replace("\\", "\\\\"), "the reason itself carries no raw control characters"


def test_an_inbox_key_at_the_limit_is_accepted() -> None:
    key = "inbox/w/" + "é" * ((MAX_KEY_BYTES - len("inbox/w/.jpg")) // 2) + ".jpg"
    assert len(key.encode()) == MAX_KEY_BYTES
    assert parse_inbox_key(key).face == "w"
    with pytest.raises(LayoutError, match="1,025 bytes"):
        parse_inbox_key(key.replace(".jpg", "x.jpg"))


@given(st.text(min_size=1, max_size=40))
def test_no_accepted_key_yields_a_result_key_with_unsafe_segments_or_characters(name: str) -> None:
    for key in (f"inbox/w/{name}.png", f"inbox/{name}/x.png", f"inbox/w/{name}/x.png"):
        try:
            target = parse_inbox_key(key)
        except LayoutError:
            continue
        result = result_key(target, "png")
        assert key_problem(result) is None, result
        assert printable(result) == result


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain café/日本.jpg", "plain café/日本.jpg"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("nul\x00 del\x7f c1\x85\x9b", "nul\\x00 del\\x7f c1\\x85\\x9b"),
        ("rtl\u202egnp \u2066\u2069 \u200e\u200f \u061c", "rtl\\u202egnp \\u2066\\u2069 \\u200e\\u200f \\u061c"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tab\tnl\n", "tab\\x09nl\\x0a"),
        ("not utf-8 \udcff", "not utf-8 \\udcff"),
        ("a typed \\x1b stays distinct", "a typed \\\\x1b stays distinct"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(text: str, shown: str) -> None:
    assert printable(text) == shown


@given(st.text())
def test_printable_output_never_holds_a_control_character(text: str) -> None:
    shown = printable(text)
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in shown)
    assert not any(c in shown for c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- face names across Unicode forms -------------------------------------------

NFC_RENEE = unicodedata.normalize("NFC", "Renée")
NFD_RENEE = unicodedata.normalize("NFD", "Renée")


def test_the_two_forms_differ_in_bytes() -> None:
    assert NFC_RENEE == "Ren\u00e9e" and NFD_RENEE == "Rene\u0301e"
    assert NFC_RENEE.encode() != NFD_RENEE.encode()


@pytest.mark.parametrize("folder", [NFC_RENEE, NFD_RENEE])
def test_face_prefixes_cover_both_forms(folder: str) -> None:
    prefixes = face_key_candidate_prefixes(folder)
    assert f"faces/{NFC_RENEE}." in prefixes and f"faces/{NFD_RENEE}." in prefixes
    assert face_key_candidate_prefixes("alice") == ["faces/alice."]


@pytest.mark.parametrize(("folder", "saved"), [(NFD_RENEE, NFC_RENEE), (NFC_RENEE, NFD_RENEE)])
def test_a_face_matches_across_unicode_forms(folder: str, saved: str) -> None:
    assert match_face_keys(folder, [f"faces/{saved}.jpg", "faces/Rene.jpg"]) == [f"faces/{saved}.jpg"]


def test_one_face_in_both_forms_is_ambiguous_and_the_message_says_why() -> None:
    keys = match_face_keys(NFD_RENEE, [f"faces/{NFC_RENEE}.jpg", f"faces/{NFD_RENEE}.png"])
    assert keys == sorted([f"faces/{NFC_RENEE}.jpg", f"faces/{NFD_RENEE}.png"])
    described = describe_face_keys(keys)
    assert "composed Unicode, NFC" in described and "decomposed Unicode, NFD" in described
    assert describe_face_keys(["faces/a.jpg", "faces/a.png"]) == "faces/a.jpg, faces/a.png"


# --- result keys within S3's limit ------------------------------------------------


def _target(path: str, face: str = "w", ext: str = "jpg") -> InboxTarget:
    return InboxTarget(key=f"inbox/{face}/{path}.{ext}", face=face, path=path, extension=ext)


def test_a_result_key_at_the_limit_is_kept_as_is() -> None:
    path = "p" * (MAX_KEY_BYTES - len("results/w/.png"))
    assert result_key(_target(path), "png") == f"results/w/{path}.png"


def test_the_1026_byte_result_key_moto_accepted_is_shortened() -> None:
    inbox_key = "inbox/w/" + "x" * (MAX_KEY_BYTES - len("inbox/w/.jpg")) + ".jpg"
    target = parse_inbox_key(inbox_key)
    naive = f"results/w/{target.path}.png"
    assert len(naive.encode()) == 1026
    key = result_key(target, "png")
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert key.startswith("results/w/xxx") and key.endswith(".png")


@pytest.mark.parametrize("char", ["x", "é", "日", "😀", "e\u0301"])
@pytest.mark.parametrize("face", ["w", "顔" * 128, "😀" * 128])
def test_long_result_keys_are_shortened_on_a_character_boundary_deterministically_and_uniquely(
    char: str, face: str
) -> None:
    deep = "/".join([char * 60] * 30)  # 1,100+ bytes even for one-byte characters
    paths = [deep + "/a", deep + "/b", deep + "x", deep]
    keys = [result_key(_target(path, face), "webp") for path in paths]
    for path, key in zip(paths, keys, strict=True):
        encoded = key.encode()
        assert len(encoded) <= MAX_KEY_BYTES
        assert encoded.decode() == key, "cut on a UTF-8 boundary"
        assert key.startswith(f"results/{face}/{char}")
        assert key == result_key(_target(path, face), "webp"), "deterministic"
        assert key_problem(key) is None
    assert len(set(keys)) == len(keys), "paths that share a long beginning keep distinct keys"


def test_a_shortened_key_ends_with_a_hash_of_the_full_path() -> None:
    path = "trip/" + "y" * 1100
    key = result_key(_target(path), "png")
    assert key.endswith(".png")
    assert len(key.encode()) == MAX_KEY_BYTES
    stem = key.removesuffix(".png")
    assert stem[-17] == "~" and all(c in "0123456789abcdef" for c in stem[-16:])


def test_an_inbox_path_that_would_take_an_api_jobs_result_key_is_refused() -> None:
    job_id = "0123456789abcdef0123456789abcdef"
    api_result = api_result_base("alice", job_id)
    with pytest.raises(LayoutError, match=r"reserved.*jobs API"):
        parse_inbox_key(f"inbox/alice/jobs/{job_id}.jpg")
    # only that exact shape: other 'jobs' folders and names keep working, and never reach an API job's key
    for key in (
        f"inbox/alice/jobs/{job_id[:-1]}.jpg",
        f"inbox/alice/jobs/{job_id.upper()}.jpg",
        f"inbox/alice/jobs/x/{job_id}.jpg",
        f"inbox/alice/my-jobs/{job_id}.jpg",
    ):
        target = parse_inbox_key(key)
        assert not result_key(target, "png").startswith(api_result + ".")
