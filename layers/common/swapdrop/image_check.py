"""Is this upload an image the swap API can take? Decided by content, never by file name."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 50_000_000

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
    """Check magic bytes and that the header decodes; `label` names the image in the reason."""
    if not data:
        raise InvalidImage(f"{label} is empty (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImage(f"{label} is {_describe_other(data)}, not a JPEG, PNG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise InvalidImage(f"{label} has too many pixels to process safely") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidImage(f"{label} looks like a {fmt} file but its header is damaged or truncated") from error
    if width < 1 or height < 1:
        raise InvalidImage(f"{label} has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise InvalidImage(
            f"{label} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixels allowed"
        )
    return ImageInfo(format=fmt, width=width, height=height)


def _describe_other(data: bytes) -> str:
    for magic, name in _KNOWN_OTHERS:
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "a HEIC/HEIF photo (convert it to JPEG first)"
    if data[4:12].startswith(b"ftypavif"):
        return "an AVIF image"
    return "not an image file"
