"""The S3 layout contract, in one place.

    faces/<face>.<ext>            a source face (no trigger)
    inbox/<face>/<path>.<ext>     a target; each new object is one job
    results/<face>/<path>.<ext>   the swapped image (written by the pipeline, never triggers)

`<ext>` is jpg, jpeg, png or webp in any case. Keys in S3 events are URL-encoded and
must go through `decode_event_key` first.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from urllib.parse import unquote_plus

FACES_PREFIX = "faces/"
INBOX_PREFIX = "inbox/"
RESULTS_PREFIX = "results/"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
MAX_FACE_NAME_LENGTH = 128


class LayoutError(ValueError):
    """A key that does not follow the layout; the message is for the person who uploaded it."""


@dataclass(frozen=True, slots=True)
class InboxTarget:
    key: str
    face: str
    path: str
    """The target's path below inbox/<face>/, without extension (e.g. 'trip/beach')."""
    extension: str


def decode_event_key(raw_key: str) -> str:
    """S3 events encode keys like a form: '+' is a space, '%2B' a plus sign."""
    return unquote_plus(raw_key)


def extension_of(key: str) -> str:
    _, dot, ext = posixpath.basename(key).rpartition(".")
    return ext.lower() if dot else ""


def parse_inbox_key(key: str) -> InboxTarget:
    if not key.startswith(INBOX_PREFIX):
        raise LayoutError(f"'{key}' is not under {INBOX_PREFIX}")
    rest = key[len(INBOX_PREFIX) :]
    face, slash, relative = rest.partition("/")
    if not slash or not face:
        raise LayoutError(
            f"'{key}' is not in a face folder: put targets under {INBOX_PREFIX}<face>/, "
            f"where faces/<face>.jpg is the face to swap in"
        )
    _validate_face_name(face)
    ext = extension_of(relative)
    if ext not in IMAGE_EXTENSIONS:
        shown = f"'.{ext}'" if ext else "no extension"
        raise LayoutError(f"'{key}' has {shown}; targets must end in {_allowed()}")
    path = relative[: -(len(ext) + 1)]
    if not posixpath.basename(path):
        raise LayoutError(f"'{key}' has no file name before '.{ext}'")
    return InboxTarget(key=key, face=face, path=path, extension=ext)


def _validate_face_name(face: str) -> None:
    if len(face) > MAX_FACE_NAME_LENGTH:
        raise LayoutError(f"face name '{face[:40]}…' is longer than {MAX_FACE_NAME_LENGTH} characters")
    if face in (".", ".."):
        raise LayoutError(f"'{face}' is not a usable face name")


def face_key_candidates_prefix(face: str) -> str:
    """The prefix to list when looking for faces/<face>.<ext>."""
    return f"{FACES_PREFIX}{face}."


def match_face_keys(face: str, keys: list[str]) -> list[str]:
    """The keys among a listing of `faces/<face>.` that are that face's image, sorted."""
    prefix = face_key_candidates_prefix(face)
    return sorted(k for k in keys if k.startswith(prefix) and k[len(prefix) :].lower() in IMAGE_EXTENSIONS)


def result_key(target: InboxTarget, extension: str) -> str:
    """Same face and relative path as the target; the extension is the result's real format."""
    return f"{RESULTS_PREFIX}{target.face}/{target.path}.{extension}"


def job_id_for(bucket: str, key: str, version_or_sequencer: str) -> str:
    """Same S3 event → same job; a re-upload (new sequencer/version) → a new job."""
    digest = hashlib.sha256("\x00".join((bucket, key, version_or_sequencer)).encode())
    return digest.hexdigest()[:32]


def _allowed() -> str:
    return ", ".join(f".{e}" for e in IMAGE_EXTENSIONS) + " (any case)"
