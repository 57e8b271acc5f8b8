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
