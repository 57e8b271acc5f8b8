"""Image check: header-only (the old check) vs reading the image data to its end (today's), side by side.

A 12 MP and a 512 px JPEG of photo-like content, plus a 12 MP PNG, each checked both ways
in one run; the median time of each and their ratio. For reference, a plain full-size decode
(Image.load at full scale) is timed too: the JPEG check decodes at 1/8 scale, so it holds
1/64 of the pixels (12 MP: 0.6 MB, not 36 MB), and the PNG check decompresses nothing.
(Pillow allocates pixels outside Python's allocator, so tracemalloc cannot show this.)
The header-only check is what inspect_image did before truncation was caught.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import warnings
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from swapdrop.image_check import inspect_image, sniff_format

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure

ROUNDS = 7


def photo_like(size: tuple[int, int], fmt: str) -> bytes:
    """Gradients, shapes, blur and grain: compresses like a photo (a 12 MP JPEG of a few MiB)."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(40):
        x, y = (i * 7919) % width, (i * 104729) % height
        draw.ellipse((x, y, x + width // 6, y + height // 6), fill=((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
    image = image.filter(ImageFilter.GaussianBlur(2))
    image = Image.blend(image, Image.effect_noise(size, 40).convert("RGB"), 0.2)  # sensor noise: real entropy
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def header_only(data: bytes) -> tuple[int, int]:
    fmt = sniff_format(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            return image.size


def full(data: bytes) -> tuple[int, int]:
    info = inspect_image(data, "bench")
    return info.width, info.height


def full_size_decode(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def measure(check, data: bytes) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        check(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cases() -> list[tuple[str, bytes]]:
    return [
        ("JPEG 4000x3000 (12 MP)", photo_like((4000, 3000), "JPEG")),
        ("JPEG 512x384", photo_like((512, 384), "JPEG")),
        ("PNG 4000x3000 (12 MP)", photo_like((4000, 3000), "PNG")),
    ]


def timings(data: bytes) -> tuple[float, float, float]:
    """Header only, the whole-data check, a full-size decode (seconds)."""
    assert header_only(data) == full(data)
    head_time, full_time, decode_time = (measure(check, data) for check in (header_only, full, full_size_decode))
    return head_time, full_time, decode_time


def figures(large: bool) -> list[Figure]:
    found = []
    for name, data in cases():
        _, full_time, decode_time = timings(data)
        found.append(
            Figure(
                f"image check {name}",
                full_time * 1000,
                "ms",
                "full-size decode",
                decode_time * 1000,
                note=f"median of {ROUNDS}",
            )
        )
    return found


def main() -> None:
    print(f"image check, header only vs whole image data, median of {ROUNDS}:")
    for name, data in cases():
        head_time, full_time, decode_time = timings(data)
        print(
            f"  {name:24s} {len(data) / 1048576:6.2f} MiB: header {head_time * 1000:6.2f} ms, "
            f"whole-data check {full_time * 1000:7.2f} ms ({full_time / head_time:5.0f}x the header), "
            f"full-size decode {decode_time * 1000:7.2f} ms ({full_time / decode_time:4.2f}x of it)"
        )


if __name__ == "__main__":
    main()
