"""face | target | result in one JPEG, for `--side-by-side`. Pillow is an extra (swapdrop[images]):
imported only here, only when asked for, and checked before any job is created."""

from __future__ import annotations

import io

from swapdrop_cli.errors import CliError, ExitCode

HEIGHT = 512
"""Every panel is scaled to this height (a small face next to a large photo stays readable)."""
GAP = 8
QUALITY = 88
SUFFIX = ".side-by-side.jpg"
PILLOW_HINT = "pip install 'swapdrop[images]'"


def require_pillow() -> None:
    """CliError(USAGE) naming the extra to install when Pillow is missing."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        message = "--side-by-side needs Pillow, which is not installed"
        raise CliError(message, ExitCode.USAGE, hint=PILLOW_HINT) from None


def side_by_side_name(result_relative: str) -> str:
    """trip/beach.png → trip/beach.side-by-side.jpg"""
    head, dot, extension = result_relative.rpartition(".")
    return (head if dot and head and "/" not in extension else result_relative) + SUFFIX


def compose(*images: bytes, height: int = HEIGHT) -> bytes:
    """The images scaled to one height, left to right on white, as JPEG. ValueError for bytes Pillow cannot read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    panels = []
    for data in images:
        try:
            with Image.open(io.BytesIO(data)) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"an image could not be read ({error})") from None
        width = max(1, round(image.width * height / max(1, image.height)))
        panels.append(image.resize((width, height), Image.Resampling.LANCZOS))
    canvas = Image.new("RGB", (sum(p.width for p in panels) + GAP * (len(panels) - 1), height), "white")
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + GAP
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()
