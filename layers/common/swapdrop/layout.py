"""The S3 layout contract, in one place.

    faces/<face>.<ext>            a source face (no trigger)
    inbox/<face>/<path>.<ext>     a target; each new object is one job
    uploads/<jobId>/target.<ext>  a jobs-API target sent with its presigned POST; binds to that job
    jobs/<jobId>/target           a jobs-API URL target, fetched by the submitter (no trigger)
    results/<face>/<path>.<ext>   the swapped image of an inbox target (written by the pipeline, never triggers)
    results/<face>/jobs/<jobId>.<ext>  the swapped image of a jobs-API job

`<ext>` is jpg, jpeg, png or webp in any case. Keys in S3 events are URL-encoded and
must go through `decode_event_key` first.

An inbox key is refused (its job ends REJECTED) when it, or the result key or local path
built from it, could mislead: control and text-direction characters, backslashes, and
empty, '.' or '..' segments. Face names match across Unicode forms (NFC and NFD), and a
result key always fits S3's 1,024-byte limit. Keys shown to people go through `printable`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_plus

FACES_PREFIX = "faces/"
INBOX_PREFIX = "inbox/"
RESULTS_PREFIX = "results/"
UPLOADS_PREFIX = "uploads/"
JOB_INPUTS_PREFIX = "jobs/"
CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
"""The image types the jobs API hands out upload forms for, and the extension each gets."""
_RESERVED_INBOX_PATH = re.compile(r"^jobs/[0-9a-f]{32}$")
"""inbox/<face>/jobs/<32 hex>.<ext> would get the result key of the jobs-API job with that id."""
_UPLOAD_KEY = re.compile(r"^uploads/([0-9a-f]{32})/target\.(jpg|png|webp)$")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
MAX_FACE_NAME_LENGTH = 128
MAX_KEY_BYTES = 1024
"""S3's limit on a key, in UTF-8 bytes."""
RESULT_HASH_CHARS = 16

# C0, DEL and C1 controls (terminal escapes), line and paragraph separators, text-direction
# marks and overrides (they reorder what a person reads), and lone surrogates (a local name
# that is not UTF-8).
_UNSAFE = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_CHARACTER = re.compile(f"[{_UNSAFE}]")
_ESCAPED_CHARACTER = re.compile(rf"[\\{_UNSAFE}]")
_SHOWN_CHARACTERS = 200


class LayoutError(ValueError):
    """A key that does not follow the layout; the message is for the person who uploaded it."""


@dataclass(frozen=True, slots=True)
class InboxTarget:
    key: str
    face: str
    path: str
    """The target's path below inbox/<face>/, without extension (e.g. 'trip/beach')."""
    extension: str


def printable(text: str) -> str:
    """`text` safe for a log line or a terminal: control, text-direction and separator
    characters become repr-style escapes (\\x1b, \\u202e), and a backslash is doubled so an
    escape shown is never confused with the same characters typed in a name."""
    return _ESCAPED_CHARACTER.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def decode_event_key(raw_key: str) -> str:
    """S3 events encode keys like a form: '+' is a space, '%2B' a plus sign."""
    return unquote_plus(raw_key)


def extension_of(key: str) -> str:
    _, dot, ext = posixpath.basename(key).rpartition(".")
    return ext.lower() if dot else ""


def key_problem(key: str) -> str | None:
    """Why `key` is unsafe to turn into another key or a local path, or None.

    Shared by the inbox (refuses such targets) and the drop folder (refuses such results)."""
    return _character_problem(key) or _segment_problem(key)


def _character_problem(key: str) -> str | None:
    shown = _shown(key)
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        return f"'{shown}' is {size:,} bytes long, over S3's limit of {MAX_KEY_BYTES:,} bytes; use a shorter name"
    unsafe = _UNSAFE_CHARACTER.search(key)
    if unsafe:
        return (
            f"'{shown}' contains the control or text-direction character '{printable(unsafe.group())}' "
            f"(at character {unsafe.start() + 1}); rename it without such characters"
        )
    if "\\" in key:
        return f"'{shown}' contains a backslash; use '/' between folders"
    return None


def _segment_problem(key: str) -> str | None:
    shown = _shown(key)
    segments = key.split("/")
    if "" in segments:
        return f"'{shown}' has an empty folder name ('//', or a '/' at the start or end)"
    for bad in ("..", "."):
        if bad in segments:
            return f"'{shown}' has a '{bad}' path segment; folders named '.' or '..' are not allowed"
    return None


def parse_inbox_key(key: str) -> InboxTarget:
    problem = _character_problem(key)
    if problem:
        raise LayoutError(problem)
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
    problem = _segment_problem(key)
    if problem:
        raise LayoutError(problem)
    if _RESERVED_INBOX_PATH.match(path):
        raise LayoutError(
            f"'{printable(key)}' is reserved: results/{printable(face)}/{path}.<ext> is where the jobs API keeps "
            f"the result of job {path[5:]}; rename the file or its 'jobs' folder"
        )
    return InboxTarget(key=key, face=face, path=path, extension=ext)


def _validate_face_name(face: str) -> None:
    if len(face) > MAX_FACE_NAME_LENGTH:
        raise LayoutError(f"face name '{face[:40]}…' is longer than {MAX_FACE_NAME_LENGTH} characters")
    if face in (".", ".."):
        raise LayoutError(f"'{face}' is not a usable face name")


def face_name_problem(face: str) -> str | None:
    """Why `face` cannot name a face (faces/<face>.<ext>, inbox/<face>/…), or None: the drop
    folder's rule, for names that arrive by themselves (the jobs API's PUT /faces/{face})."""
    if not face:
        return "the face name is empty"
    problem = _character_problem(face)
    if problem:
        return f"face name {problem}"
    if "/" in face:
        return f"face name '{printable(face[:40])}' contains '/'; a face name is one folder name"
    try:
        _validate_face_name(face)
    except LayoutError as error:
        return str(error)
    return None


def upload_key(job_id: str, content_type: str) -> str:
    """Where a jobs-API target is uploaded with its presigned POST: the key names the job."""
    return f"{UPLOADS_PREFIX}{job_id}/target.{CONTENT_TYPES[content_type]}"


def job_id_of_upload(key: str) -> str | None:
    """The job an uploads/ key belongs to, or None for a key the API never hands out."""
    found = _UPLOAD_KEY.match(key)
    return found.group(1) if found else None


def input_key(job_id: str) -> str:
    """Where the submitter keeps a URL target it fetched (no notification on jobs/)."""
    return f"{JOB_INPUTS_PREFIX}{job_id}/target"


def api_result_base(face: str, job_id: str) -> str:
    """A jobs-API job's result key, less its extension (the result's real format decides that)."""
    return f"{RESULTS_PREFIX}{face}/jobs/{job_id}"


def face_key_candidates_prefix(face: str) -> str:
    """The prefix to list when looking for faces/<face>.<ext>, in the form given."""
    return f"{FACES_PREFIX}{face}."


def face_key_candidate_prefixes(face: str) -> list[str]:
    """Every prefix to list for faces/<face>.<ext>: S3 lists by bytes, and the same name can
    be saved composed (NFC, most systems) or decomposed (NFD, macOS file names)."""
    forms = dict.fromkeys((face, unicodedata.normalize("NFC", face), unicodedata.normalize("NFD", face)))
    return [face_key_candidates_prefix(form) for form in forms]


def match_face_keys(face: str, keys: list[str]) -> list[str]:
    """The keys among a listing of `faces/<face>.` that are that face's image, sorted.

    Compared after NFC normalisation, so one face saved in two Unicode forms is two matches
    (ambiguous), not one match and a stranger."""
    prefix = _nfc(face_key_candidates_prefix(face))
    matches = set()
    for key in keys:
        normal = _nfc(key)
        if normal.startswith(prefix) and normal[len(prefix) :].lower() in IMAGE_EXTENSIONS:
            matches.add(key)
    return sorted(matches)


def describe_face_keys(keys: list[str]) -> str:
    """Face keys for a message, with their Unicode form when not all are NFC: names that differ
    only in form look identical, and the person needs to know which file to keep."""
    if all(unicodedata.is_normalized("NFC", key) for key in keys):
        return ", ".join(printable(key) for key in keys)
    return ", ".join(f"{printable(key)} ({_form_of(key)})" for key in keys)


def _form_of(key: str) -> str:
    if unicodedata.is_normalized("NFC", key):
        return "composed Unicode, NFC"
    if unicodedata.is_normalized("NFD", key):
        return "decomposed Unicode, NFD, as macOS names files"
    return "mixed Unicode forms"


def result_key(target: InboxTarget, extension: str) -> str:
    """Same face and relative path as the target; the extension is the result's real format.

    A key over S3's limit keeps its face folder and as much of the path as fits (cut on a
    character boundary), then '~' and a hash of the full path: the same target always gets
    the same key, and two long paths that share a beginning still get two keys."""
    key = f"{RESULTS_PREFIX}{target.face}/{target.path}.{extension}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    head = f"{RESULTS_PREFIX}{target.face}/"
    digest = hashlib.sha256(target.path.encode()).hexdigest()[:RESULT_HASH_CHARS]
    tail = f"~{digest}.{extension}"
    room = MAX_KEY_BYTES - len(head.encode()) - len(tail.encode())
    kept = target.path.encode()[:room].decode("utf-8", "ignore")
    return f"{head}{kept}{tail}"


def job_id_for(bucket: str, key: str, version_or_sequencer: str) -> str:
    """Same S3 event → same job; a re-upload (new sequencer/version) → a new job."""
    digest = hashlib.sha256("\x00".join((bucket, key, version_or_sequencer)).encode())
    return digest.hexdigest()[:32]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _shown(key: str) -> str:
    shown = printable(key)
    return shown if len(shown) <= _SHOWN_CHARACTERS else f"{shown[:_SHOWN_CHARACTERS]}…"


def _allowed() -> str:
    return ", ".join(f".{e}" for e in IMAGE_EXTENSIONS) + " (any case)"
