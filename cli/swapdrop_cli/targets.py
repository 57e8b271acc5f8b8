"""What `swapdrop swap FACE TARGET...` sends: local files (directories walked), s3:// keys, https:// URLs.

Each target gets a `relative` name: where its result goes below --out. A directory's images keep
their path inside it; a file, an s3:// key or a URL keep their base name. Names that could mislead a
person or escape --out (control characters, backslashes, '..') are refused here, and `output_path`
checks again at write time.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from swapdrop.layout import IMAGE_EXTENSIONS, extension_of, key_problem, printable

from swapdrop_cli.errors import CliError, ExitCode

MAX_BATCH = 100
"""The jobs API's limit on targets in one POST /jobs."""
MAX_NOTES = 10
"""Skipped-file notes shown one by one; the rest are counted."""

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


@dataclass(frozen=True)
class SwapTarget:
    """One target: exactly one of `path`, `s3_key`, `url` is set."""

    shown: str
    """How the person named it (path as typed + inside the directory, s3://…, the URL): for tables."""
    relative: str
    """POSIX path below --out (with the source's extension; the result's type replaces it)."""
    path: Path | None = None
    content_type: str | None = None
    s3_key: str | None = None
    s3_bucket: str | None = None
    url: str | None = None

    @property
    def kind(self) -> str:
        return "file" if self.path else "s3" if self.s3_key else "url"

    def request(self) -> dict:
        """The target as POST /jobs takes it."""
        if self.path is not None:
            return {"upload": {"contentType": self.content_type}}
        if self.s3_key is not None:
            return {"s3Key": self.s3_key}
        return {"url": self.url}


def sniff_content_type(path: Path) -> str | None:
    """The image type from the file's first bytes (JPEG, PNG, WebP), or None: the extension alone can lie."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def has_image_extension(name: str) -> bool:
    return extension_of(name) in IMAGE_EXTENSIONS


class Notes:
    """Skipped-file notes on stderr: the first MAX_NOTES one by one, then a count."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self._note = note
        self.skipped = 0

    def skip(self, text: str) -> None:
        self.skipped += 1
        if self.skipped <= MAX_NOTES:
            self._note(f"skipped {text}")

    def finish(self) -> None:
        if self.skipped > MAX_NOTES:
            self._note(f"skipped {self.skipped - MAX_NOTES} more files (not images or unusable names)")


def expand_targets(arguments: Iterable[str], bucket: str | None, note: Callable[[str], None]) -> list[SwapTarget]:
    """Every target the arguments name, in order, with unique `relative` names.

    A usage error (exit 2) for an argument that cannot be a target; inside a directory, files that
    are not images (by extension and by content) or have unusable names are skipped with a note."""
    notes = Notes(note)
    found: list[SwapTarget] = []
    for argument in arguments:
        found.extend(_expand(argument, bucket, notes))
    notes.finish()
    if not found:
        raise CliError("no images to swap among the targets given", ExitCode.USAGE, hint=_TARGET_HINT)
    return unique_relatives(found)


_TARGET_HINT = "a TARGET is an image file, a folder of images, s3://BUCKET/KEY in the stack's bucket or an https:// URL"


def _expand(argument: str, bucket: str | None, notes: Notes) -> list[SwapTarget]:
    lowered = argument.lower()
    if lowered.startswith("s3://"):
        return [_s3_target(argument, bucket)]
    if lowered.startswith("https://"):
        return [_url_target(argument)]
    if lowered.startswith("http://"):
        raise CliError(
            f"refusing the plain-http URL {printable(argument)}: the jobs API fetches https:// URLs only",
            ExitCode.USAGE,
            hint="use its https:// address, or download it and pass the file",
        )
    if "://" in argument:
        raise CliError(f"'{printable(argument)}' is not a target I can send", ExitCode.USAGE, hint=_TARGET_HINT)
    path = Path(argument)
    if path.is_dir():
        return list(_walk(path, notes))
    if not path.exists():
        raise CliError(f"no such file or folder: {printable(argument)}", ExitCode.USAGE, hint=_TARGET_HINT)
    if not path.is_file():
        raise CliError(f"'{printable(argument)}' is not a regular file", ExitCode.USAGE, hint=_TARGET_HINT)
    return [_file_target(path, path.name, str(path), explicit=True)]


def _file_target(path: Path, relative: str, shown: str, explicit: bool) -> SwapTarget:
    problem = key_problem(relative)
    if problem:
        raise CliError(f"unusable file name: {problem}", ExitCode.USAGE)
    if not has_image_extension(relative):
        raise CliError(
            f"'{printable(shown)}' does not end in .jpg, .jpeg, .png or .webp",
            ExitCode.USAGE,
            hint="only JPEG, PNG and WebP images can be swapped",
        )
    content_type = sniff_content_type(path)
    if content_type is None:
        raise CliError(
            f"'{printable(shown)}' is not a JPEG, PNG or WebP image (its first bytes say otherwise)", ExitCode.USAGE
        )
    return SwapTarget(shown=shown, relative=relative, path=path, content_type=content_type)


def _walk(root: Path, notes: Notes) -> Iterator[SwapTarget]:
    """The images below `root`, sorted, following symbolic links once (a link back up is not a loop).

    Hidden files and folders (.DS_Store, ._IMG.jpg from macOS, .git) are skipped silently."""
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, prefix: PurePosixPath) -> Iterator[SwapTarget]:
        try:
            info = folder.stat()
        except OSError as error:
            notes.skip(f"{printable(str(folder))}: {error.strerror}")
            return
        identity = (info.st_dev, info.st_ino)
        if identity in seen:
            notes.skip(f"{printable(str(folder))}: a link back to a folder already walked")
            return
        seen.add(identity)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            notes.skip(f"{printable(str(folder))}: {error.strerror}")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = prefix / entry.name
            shown = str(Path(folder, entry.name))
            try:
                mode = os.stat(entry.path).st_mode
            except OSError:
                notes.skip(f"{printable(shown)}: a broken link")
                continue
            if stat.S_ISDIR(mode):
                yield from visit(Path(entry.path), relative)
                continue
            if not stat.S_ISREG(mode):
                continue
            problem = key_problem(str(relative))
            if problem:
                notes.skip(f"a file with an unusable name: {problem}")
                continue
            if not has_image_extension(entry.name):
                notes.skip(f"{printable(shown)}: not an image (.jpg, .jpeg, .png, .webp)")
                continue
            content_type = sniff_content_type(Path(entry.path))
            if content_type is None:
                notes.skip(f"{printable(shown)}: named like an image but is not a JPEG, PNG or WebP")
                continue
            yield SwapTarget(shown=shown, relative=str(relative), path=Path(entry.path), content_type=content_type)

    yield from visit(root, PurePosixPath())


def _s3_target(argument: str, bucket: str | None) -> SwapTarget:
    rest = argument[len("s3://") :]
    named_bucket, _, key = rest.partition("/")
    if not named_bucket or not key:
        raise CliError(f"'{printable(argument)}' is not s3://BUCKET/KEY", ExitCode.USAGE, hint=_TARGET_HINT)
    problem = key_problem(key)
    if problem:
        raise CliError(f"unusable S3 key: {problem}", ExitCode.USAGE)
    target = SwapTarget(shown=argument, relative=_base_name(key, "target"), s3_key=key, s3_bucket=named_bucket)
    if bucket is not None:
        check_buckets([target], bucket)
    return target


def check_buckets(targets: Iterable[SwapTarget], bucket: str) -> None:
    """s3:// targets must be in the stack's bucket: the pipeline reads (and may read) only that one."""
    for target in targets:
        if target.s3_bucket is not None and target.s3_bucket != bucket:
            raise CliError(
                f"s3://{printable(target.s3_bucket)}/… is not the stack's bucket ({bucket}): "
                "the pipeline reads only its own",
                ExitCode.USAGE,
                hint=f"copy it there first (aws s3 cp {printable(target.shown)} s3://{bucket}/…) or pass a local file",
            )


def _url_target(argument: str) -> SwapTarget:
    parts = urlsplit(argument)
    if not parts.hostname:
        raise CliError(f"'{printable(argument)}' has no host name", ExitCode.USAGE, hint=_TARGET_HINT)
    return SwapTarget(shown=argument, relative=_base_name(unquote(parts.path), "target"), url=argument)


def _base_name(path: str, fallback: str) -> str:
    """The last segment of a key or URL path, when it makes a safe file name; else `fallback`."""
    name = posixpath.basename(path.rstrip("/"))
    if not name or name in (".", "..") or key_problem(name):
        return fallback
    return name


def unique_relatives(targets: list[SwapTarget]) -> list[SwapTarget]:
    """Two targets never share a result path. Results differ from their targets' paths only by
    extension (beach.jpg and beach.png would both become beach.<result type>), so a later target
    with a stem already taken (compared case-blind, as macOS and Windows do) keeps its extension in
    its name (beach.png.png), and failing that gets a counter (beach-2.png)."""
    taken: set[str] = set()
    unique = []
    for target in targets:
        for candidate in _candidates(target.relative, len(targets)):
            stem = _stem(candidate).casefold()
            if stem not in taken:
                taken.add(stem)
                break
        if candidate != target.relative:
            target = replace(target, relative=candidate)
        unique.append(target)
    return unique


def _candidates(relative: str, count: int) -> Iterator[str]:
    yield relative
    head, extension = _split(relative)
    if extension:
        yield f"{relative}.{extension}"
    for number in range(2, count + 3):
        yield f"{head}-{number}.{extension}" if extension else f"{relative}-{number}"


def _split(relative: str) -> tuple[str, str]:
    """(path without its image extension, extension) or (path, '')."""
    head, dot, extension = relative.rpartition(".")
    if dot and head and not head.endswith("/") and extension.lower() in IMAGE_EXTENSIONS:
        return head, extension
    return relative, ""


def _stem(relative: str) -> str:
    return _split(relative)[0]


def batches(targets: list[SwapTarget], size: int = MAX_BATCH) -> list[list[SwapTarget]]:
    return [targets[start : start + size] for start in range(0, len(targets), size)]


MAX_IDEMPOTENCY_KEY = 255 - len(f"-{1_000_000 // MAX_BATCH}")
"""The API takes keys of 1..255 printable ASCII characters; room is left for the batch suffix."""
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]+$")


def check_idempotency_key(key: str | None) -> None:
    """A usage error for a key the API would refuse, before anything is sent."""
    if key is None:
        return
    if not _IDEMPOTENCY_KEY.match(key) or len(key) > MAX_IDEMPOTENCY_KEY:
        raise CliError(
            f"--idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces",
            ExitCode.USAGE,
        )


def batch_idempotency_key(key: str | None, index: int) -> str | None:
    """The Idempotency-Key of batch `index` (0-based): K, then K-2, K-3, … so a rerun with the same K
    and the same targets creates nothing new, batch by batch."""
    if key is None:
        return None
    return key if index == 0 else f"{key}-{index + 1}"


def result_relative(relative: str, extension: str) -> str:
    """The result's path below --out: the target's path with the result's extension."""
    return f"{_stem(relative)}.{extension}"


def output_path(out_dir: Path, relative: str) -> Path:
    """Where `relative` goes below `out_dir`; CliError if it could land anywhere else.

    Refuses absolute paths, '..', '.', empty segments, backslashes and control characters, and a
    path whose existing folders lead (through symbolic links) outside `out_dir`."""
    problem = key_problem(relative)
    if problem or relative.startswith("/"):
        raise CliError(f"refusing to write a result outside --out: {problem or printable(relative)}", ExitCode.USAGE)
    root = out_dir.resolve()
    destination = root.joinpath(*relative.split("/"))
    parent = destination.parent
    existing = parent
    while not existing.exists() and existing != root:
        existing = existing.parent
    if not existing.resolve().is_relative_to(root):
        raise CliError(
            f"refusing to write {printable(relative)}: a folder on its way is a link out of {out_dir}", ExitCode.USAGE
        )
    return destination
