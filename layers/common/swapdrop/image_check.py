"""Is this upload an image the swap API can take? Decided by content, never by file name.

A header that decodes is not enough: a JPEG cut in half still has a perfect header, and the
swap API (paid) then fails to decode it. So after the header and the pixel limit, the image
data itself is read to its end, bounded in memory:

- JPEG: decoded at 1/8 scale (Image.draft), which still reads the whole entropy-coded stream;
- PNG: every chunk read and CRC-checked through IEND (Image.verify), nothing decompressed;
- WebP: every RIFF chunk walked to the container's declared end (a cut file ends early), then,
  up to WEBP_DECODE_MAX_PIXELS, a full decode. libwebp has no scaled decode in Pillow and holds about
  16 bytes a pixel while decoding (a flat 50 MP WebP of 90 KB peaked at 790 MB, over any function's
  memory): above that size the chunk walk is the check, as the CRC walk is for PNG. WebP has no
  checksums, so damage inside a large image's bitstream is left to the swap API to find.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported on first use: callbacks and the reconciler check a result only on SUCCESS
    from PIL import Image

MAX_PIXELS = 50_000_000
WEBP_DECODE_MAX_PIXELS = 4_000_000
"""Largest WebP decoded in full by the check: about 65 MB while decoding, within the 256 MB functions."""

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXTENSION = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_KNOWN_OTHERS = (
    (b"GIF8", "a GIF"),
    (b"%PDF", "a PDF document"),
    (b"BM", "a BMP"),
    (b"II*\x00", "a TIFF"),
    (b"MM\x00*", "a TIFF"),
)


class InvalidImage(ValueError):
    """The reason, for a person: what is wrong with which image."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int
    height: int

    @property
    def mime_type(self) -> str:
        return _MIME[self.format]

    @property
    def extension(self) -> str:
        return _EXTENSION[self.format]


def sniff_format(data: bytes) -> str | None:
    """JPEG, PNG or WEBP from the magic bytes, else None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_image(data: bytes, label: str) -> ImageInfo:
    """Check magic bytes, header, pixel limit, then that the image data is whole; `label` names the image."""
    if not data:
        raise InvalidImage(f"{label} is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImage(f"{label} is {_describe_other(data)}, not a JPEG, PNG or WebP image")
    if fmt == "WEBP":
        _walk_webp_chunks(data, label)
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise InvalidImage(f"{label} has too many pixels to process safely") from error
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise InvalidImage(f"{label} looks like a {fmt} file but its header is damaged or truncated") from error
        with image:
            width, height = image.size
            if width < 1 or height < 1:
                raise InvalidImage(f"{label} has no pixels ({width}x{height})")
            if width * height > MAX_PIXELS:
                raise InvalidImage(
                    f"{label} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixels allowed"
                )
            _read_to_the_end(image, fmt, label)
    return ImageInfo(format=fmt, width=width, height=height)


_ENDS_EARLY = "{label} is truncated or damaged: the image data ends early"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, TypeError)


def _read_to_the_end(image: Image.Image, fmt: str, label: str) -> None:
    """Decode (or, for PNG, walk and CRC-check) the whole image data, with bounded memory."""
    from PIL import Image

    try:
        if fmt == "JPEG":
            width, height = image.size
            image.draft(None, (max(1, -(-width // 8)), max(1, -(-height // 8))))
            image.load()
        elif fmt == "PNG":
            image.verify()
        elif image.size[0] * image.size[1] <= WEBP_DECODE_MAX_PIXELS:
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InvalidImage(f"{label} has too many pixels to process safely") from error
    except _DECODE_ERRORS as error:
        if "truncat" in str(error).lower():
            raise InvalidImage(_ENDS_EARLY.format(label=label)) from error
        raise InvalidImage(f"{label} is truncated or damaged: its {fmt} image data does not decode") from error


_WEBP_IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ANMF")


def _walk_webp_chunks(data: bytes, label: str) -> None:
    """Every chunk's declared size must fit the RIFF container, and the container the data: a cut
    file (or one whose sizes lie) ends early. Reads 8 bytes a chunk; decodes nothing."""
    end = int.from_bytes(data[4:8], "little") + 8
    if len(data) < end:
        raise InvalidImage(_ENDS_EARLY.format(label=label))
    position, image_chunk = 12, False
    while position < end:
        if position + 8 > end:
            raise InvalidImage(_ENDS_EARLY.format(label=label))
        fourcc = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        if position + 8 + size > end:
            raise InvalidImage(_ENDS_EARLY.format(label=label))
        image_chunk = image_chunk or fourcc in _WEBP_IMAGE_CHUNKS
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    if not image_chunk:
        raise InvalidImage(f"{label} is truncated or damaged: its WEBP container holds no image data")


def _describe_other(data: bytes) -> str:
    for magic, name in _KNOWN_OTHERS:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "a HEIC/HEIF photo (convert it to JPEG first)"
    if data[4:12].startswith(b"ftypavif"):
        return "an AVIF image"
    return "not an image file"
