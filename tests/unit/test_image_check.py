"""image_check: decided by content; every bad input gets its own reason."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace

import pytest
from PIL import Image
from swapdrop.image_check import InvalidImage, inspect_image, sniff_format

from .builders import png_claiming


@pytest.mark.parametrize(
    ("name", "fmt", "size", "mime", "extension"),
    [
        ("jpeg", "JPEG", (32, 24), "image/jpeg", "jpg"),
        ("png", "PNG", (24, 16), "image/png", "png"),
        ("webp", "WEBP", (20, 20), "image/webp", "webp"),
    ],
)
def test_accepted_formats(
    images: SimpleNamespace, name: str, fmt: str, size: tuple[int, int], mime: str, extension: str
) -> None:
    info = inspect_image(getattr(images, name), "the target")
    assert info.format == fmt
    assert (info.width, info.height) == size
    assert info.mime_type == mime
    assert info.extension == extension


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gif", "the target is a GIF, not a JPEG, PNG or WebP image"),
        ("pdf", "the target is a PDF document, not a JPEG, PNG or WebP image"),
        ("heic", "the target is a HEIC/HEIF photo (convert it to JPEG first), not a JPEG, PNG or WebP image"),
        ("truncated_jpeg", "the target looks like a JPEG file but its header is damaged or truncated"),
        ("bomb_png", "the target has too many pixels to process safely"),
        ("big_png", "the target is 8000x8000 pixels, more than the 50 megapixels allowed"),
    ],
)
def test_refusals_say_what_is_wrong(images: SimpleNamespace, name: str, message: str) -> None:
    with pytest.raises(InvalidImage) as raised:
        inspect_image(getattr(images, name), "the target")
    assert str(raised.value) == message


def test_empty_file() -> None:
    with pytest.raises(InvalidImage, match=r"^the face image 'faces/a.jpg' is empty \(0 bytes\)$"):
        inspect_image(b"", "the face image 'faces/a.jpg'")


def test_random_text_is_not_an_image() -> None:
    with pytest.raises(InvalidImage, match="is not an image file, not a JPEG, PNG or WebP image"):
        inspect_image(b"hello, this is a text file", "x")


def test_truncated_png_and_webp_headers(images: SimpleNamespace) -> None:
    with pytest.raises(InvalidImage, match="looks like a PNG file but its header is damaged or truncated"):
        inspect_image(images.png[:20], "x")
    with pytest.raises(InvalidImage, match=r"^x is truncated or damaged: the image data ends early$"):
        inspect_image(images.webp[:16], "x")  # the RIFF header says how long the file is


def test_format_comes_from_content_not_name(images: SimpleNamespace) -> None:
    assert sniff_format(images.png) == "PNG"
    assert sniff_format(images.jpeg) == "JPEG"
    assert sniff_format(images.webp) == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(images.gif) is None


def test_just_under_the_pixel_limit_passes() -> None:
    info = inspect_image(png_claiming(7_000, 7_000), "x")  # 49 MP: header decodes, under the cap
    assert (info.width, info.height) == (7_000, 7_000)


# --- the image data must be whole, not just the header ---------------------------------------------


def photo(fmt: str, size: tuple[int, int] = (256, 192), **options: object) -> bytes:
    """Noise, so the image data is most of the file and the header sits in its first few percent."""
    pixels = random.Random(f"{fmt}{size}{options}").randbytes(size[0] * size[1] * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


WHOLE = {
    "jpeg": photo("JPEG", quality=90),
    "progressive jpeg": photo("JPEG", quality=90, progressive=True),
    "png": photo("PNG"),
    "webp": photo("WEBP", quality=80),
}


@pytest.mark.parametrize("name", list(WHOLE))
def test_a_whole_image_passes(name: str) -> None:
    info = inspect_image(WHOLE[name], "the target")
    assert (info.width, info.height) == (256, 192)


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9])
@pytest.mark.parametrize("name", list(WHOLE))
def test_a_cut_image_is_refused_as_truncated(name: str, fraction: float) -> None:
    """The reported failure: JPEGs cut at 50 % and 10 % passed the header check and were sent (paid)."""
    data = WHOLE[name]
    with pytest.raises(InvalidImage) as raised:
        inspect_image(data[: int(len(data) * fraction)], "the target 'inbox/a/cut.jpg'")
    assert str(raised.value) == "the target 'inbox/a/cut.jpg' is truncated or damaged: the image data ends early"


def test_a_png_with_a_damaged_chunk_is_refused() -> None:
    data = bytearray(WHOLE["png"])
    data[len(data) // 2] ^= 0xFF  # breaks an IDAT chunk's CRC
    with pytest.raises(InvalidImage, match=r"^x is truncated or damaged"):
        inspect_image(bytes(data), "x")


def test_a_jpeg_missing_only_its_end_marker_still_passes() -> None:
    """Every scan is there; decoders (the swap API's too) accept it, so refusing it would be wrong."""
    assert inspect_image(WHOLE["jpeg"][:-2], "x").format == "JPEG"


def test_a_large_jpeg_is_decoded_at_reduced_scale() -> None:
    """12 MP at 1/8 scale: the check never holds the full-size pixels (36 MB)."""
    data = photo("JPEG", (4000, 3000), quality=70)
    assert (inspect_image(data, "x").width, inspect_image(data, "x").height) == (4000, 3000)


# --- WebP: the chunk walk, and a full decode only where it fits in memory ------------------------------


def _webp_chunks(data: bytes) -> list[tuple[bytes, int]]:
    chunks, position = [], 12
    while position < len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        chunks.append((data[position : position + 4], size))
        position += 8 + size + (size & 1)
    return chunks


def _flat_webp(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def test_a_large_webp_is_checked_by_its_chunks_without_a_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat 50 MP WebP is ~90 KB on S3 and ~800 MB decoded: above WEBP_DECODE_MAX_PIXELS nothing is decoded."""
    from PIL import WebPImagePlugin
    from swapdrop import image_check

    data = _flat_webp((2_100, 2_000))  # 4.2 MP, just over the decode limit
    assert image_check.WEBP_DECODE_MAX_PIXELS < 2_100 * 2_000

    def no_decode(self: object) -> None:
        raise AssertionError("a WebP over the decode limit was decoded")

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", no_decode)
    assert (inspect_image(data, "x").width, inspect_image(data, "x").height) == (2_100, 2_000)
    with pytest.raises(AssertionError, match="was decoded"):
        inspect_image(_flat_webp((200, 100)), "x")  # small ones still are


def test_a_large_webp_whose_chunk_is_cut_is_refused_even_if_the_riff_size_is_patched() -> None:
    data = bytearray(_flat_webp((2_100, 2_000)))
    assert any(fourcc in (b"VP8 ", b"VP8L") for fourcc, _ in _webp_chunks(bytes(data)))
    cut = data[: len(data) - 40]
    cut[4:8] = (len(cut) - 8).to_bytes(4, "little")  # the container now agrees; the image chunk does not
    with pytest.raises(InvalidImage, match=r"^x is truncated or damaged: the image data ends early$"):
        inspect_image(bytes(cut), "x")


def test_a_webp_container_without_image_data_is_refused() -> None:
    exif = b"EXIF" + (4).to_bytes(4, "little") + b"abcd"
    data = b"RIFF" + (4 + len(exif)).to_bytes(4, "little") + b"WEBP" + exif
    with pytest.raises(InvalidImage, match="damaged"):
        inspect_image(data, "x")


@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.95])
def test_a_large_webp_cut_anywhere_is_refused(fraction: float) -> None:
    data = _flat_webp((2_100, 2_000))
    with pytest.raises(InvalidImage, match="ends early"):
        inspect_image(data[: int(len(data) * fraction)], "x")
