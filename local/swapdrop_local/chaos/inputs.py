"""What the scenarios send: images (good and hostile), callback bodies, raw HTTP requests."""

from __future__ import annotations

import io
import json
import random
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image

MIB = 1024 * 1024


def jpeg(seed: int, size: int = 48) -> bytes:
    """A small, whole JPEG that differs for every seed."""
    rng = random.Random(seed)  # noqa: S311 - test images
    image = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(size), rng.randrange(size)
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 8, y + 8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (16, 16)).save(buffer, format="GIF")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, real_rows: int | None = None) -> bytes:
    """A grayscale PNG of width x height zeros: small on disk, huge once decoded. With
    `real_rows` only that many rows of data are present (a header bomb when tiny)."""
    rows = height if real_rows is None else real_rows
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [compressor.compress(row) for _ in range(rows)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def oversized_jpeg(size: int) -> bytes:
    start = jpeg(99, 64)
    return start[:-2] + b"\x00" * (size - len(start)) + b"\xff\xd9"


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 512
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


@dataclass(frozen=True)
class HostileUpload:
    name: str
    key: str
    data: bytes
    reason: str
    """A regular expression the job's failReason must match (case-insensitive)."""


def hostile_uploads(face: str, ambiguous: str, huge_mib: int) -> list[HostileUpload]:
    whole = jpeg(7, 256)
    return [
        HostileUpload("zero bytes", f"inbox/{face}/zero.jpg", b"", r"empty|0 bytes"),
        HostileUpload(
            f"{huge_mib} MiB", f"inbox/{face}/huge.jpg", oversized_jpeg(huge_mib * MIB), r"over the limit|too large"
        ),
        HostileUpload(
            "bomb (header)", f"inbox/{face}/bomb-header.png", png_bomb(100_000, 100_000, 4), r"pixels|megapixel"
        ),
        HostileUpload("bomb (8000x8000)", f"inbox/{face}/bomb.png", png_bomb(8000, 8000), r"pixels|megapixel"),
        HostileUpload("HEIC as .jpg", f"inbox/{face}/heic.jpg", HEIC, r"HEIC"),
        HostileUpload("GIF as .jpg", f"inbox/{face}/gif.jpg", gif(), r"GIF"),
        HostileUpload("SVG as .jpg", f"inbox/{face}/svg.jpg", SVG, r"SVG|not an image"),
        HostileUpload(
            "JPEG cut at 50%", f"inbox/{face}/half.jpg", whole[: len(whole) // 2], r"truncated|incomplete|damaged"
        ),
        HostileUpload(
            "JPEG cut at 10%", f"inbox/{face}/tenth.jpg", whole[: len(whole) // 10], r"truncated|incomplete|damaged"
        ),
        HostileUpload("ambiguous face", f"inbox/{ambiguous}/x.jpg", jpeg(8), r"ambiguous"),
        HostileUpload("missing face", "inbox/nobody-at-all/x.jpg", jpeg(9), r"no face named"),
        HostileUpload("'..' segment", f"inbox/{face}/../escape.jpg", jpeg(10), r"\.\.|segment|path"),
        HostileUpload("'..' to faces/", f"inbox/{face}/a/../../faces/x.jpg", jpeg(11), r"\.\.|segment|path"),
        HostileUpload("ANSI escape in key", f"inbox/{face}/\x1b[31mred.jpg", jpeg(12), r"control"),
        HostileUpload("tab in key", f"inbox/{face}/tab\there.jpg", jpeg(13), r"control"),
        HostileUpload("DEL in key", f"inbox/{face}/del\x7f.jpg", jpeg(14), r"control"),
    ]


# --- raw HTTP ------------------------------------------------------------------------------------


@dataclass
class RawAnswer:
    status: int | None
    seconds: float
    error: str | None = None


def raw_request(
    url: str,
    head_lines: list[str],
    body: bytes = b"",
    *,
    half_close: bool = False,
    drip_interval: float | None = None,
    drip_bytes: int = 0,
    timeout: float = 15.0,
) -> RawAnswer:
    """One hand-framed HTTP/1.1 POST to a loopback URL; the answer's status, or None if the
    connection closed (or the deadline passed) without one."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the chaos suite only talks to loopback, not {host}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    start = time.monotonic()
    deadline = start + timeout
    head = "\r\n".join([f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", *head_lines])
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            try:
                sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
                if drip_interval is not None:
                    sock.settimeout(drip_interval)
                    for _ in range(drip_bytes):
                        if time.monotonic() > deadline:
                            break
                        try:  # an answer (or a close) before the drip ends is what we hope for
                            data = sock.recv(65536, socket.MSG_PEEK)
                            if data or data == b"":
                                break
                        except TimeoutError:
                            pass
                        sock.sendall(b"x")
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may answer (413) and close before reading everything
            return RawAnswer(_read_status(sock, deadline), round(time.monotonic() - start, 2))
    except OSError as error:
        return RawAnswer(None, round(time.monotonic() - start, 2), type(error).__name__)


def _read_status(sock: socket.socket, deadline: float) -> int | None:
    data = b""
    while b"\r\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except OSError:
            return None
        if not chunk:
            break
        data += chunk
    try:
        return int(data.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return None


def post(url: str, body: bytes, timeout: float = 30.0) -> RawAnswer:
    return raw_request(url, ["Content-Type: application/json", f"Content-Length: {len(body)}"], body, timeout=timeout)


def odd_snapshot_bodies(task_id: str) -> list[bytes]:
    """Snapshots for the job's own task that no parser should choke on."""
    base = f'"id": "{task_id}", "status": "IN_PROGRESS"'
    return [
        f'{{{base}, "progress": 1e400}}'.encode(),
        f'{{{base}, "progress": Infinity}}'.encode(),
        f'{{{base}, "progress": -Infinity}}'.encode(),
        f'{{{base}, "progress": NaN}}'.encode(),
        f'{{{base}, "progress": -20}}'.encode(),
        f'{{{base}, "progress": 1e30}}'.encode(),
        f'{{"id": "{task_id}", "status": "EXPLODED", "progress": "50%"}}'.encode(),
        json.dumps({"id": task_id, "status": "FAILURE", "failReason": "x" * MIB}).encode(),
    ]


# --- generated callback bodies (hypothesis) --------------------------------------------------------

VALID_STATUSES = ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCEL")
RAW_NUMBERS = ("1e400", "-1e400", "1e-400", "Infinity", "-Infinity", "NaN", "1" * 5000, "0x10", "+1")


def hostile_bodies():  # -> SearchStrategy[bytes]
    """Callback bodies a hostile or broken sender could POST: JSON of every shape, snapshots with
    wrong or extreme fields, numbers JSON cannot hold, deep nesting, bytes that are not JSON."""
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=40)
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
    progress = (
        st.floats(allow_nan=True, allow_infinity=True)
        | st.integers(min_value=-(10**30), max_value=10**30)
        | st.text(max_size=12)
        | st.sampled_from(["45%", "100%", "101%", "-1%", "", "%"])
    )
    snapshot = st.fixed_dictionaries(
        {
            "id": st.text(max_size=200) | st.integers() | st.none() | values,
            "status": st.sampled_from(VALID_STATUSES) | st.text(max_size=20) | values,
        },
        optional={
            "progress": progress,
            "imageUrl": st.text(max_size=300) | st.sampled_from(["http://127.0.0.1:1/x.png", "file:///etc/passwd"]),
            "failReason": st.text(max_size=6000),
            "state": st.text(max_size=40) | values,
            "properties": values,
            "submitTime": st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=True),
        },
    )
    as_json = (values | snapshot).map(lambda v: json.dumps(v).encode())
    raw_number = st.tuples(st.sampled_from(VALID_STATUSES), st.sampled_from(RAW_NUMBERS)).map(
        lambda sv: f'{{"id": "424242", "status": "{sv[0]}", "progress": {sv[1]}}}'.encode()
    )
    deep = st.integers(min_value=500, max_value=100_000).flatmap(
        lambda depth: st.sampled_from([b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth])
    )
    noise = st.binary(max_size=3000) | st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))
    return st.one_of(as_json, as_json, raw_number, deep, noise)
