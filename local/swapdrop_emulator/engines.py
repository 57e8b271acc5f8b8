"""Engines: callables (source bytes, target bytes) -> PNG bytes, raising with the failReason."""

from __future__ import annotations

import io
import logging

from .config import Engine

log = logging.getLogger("swapdrop_emulator.engine")


def faceswap_engine(source: bytes, target: bytes) -> bytes:
    """The real classical face swap; imported on first use (MediaPipe, OpenCV are heavy)."""
    from swapdrop_emulator.faceswap import swap_faces

    return swap_faces(source, target).png


def echo_engine(source: bytes, target: bytes) -> bytes:
    """No swap: the target, re-encoded as PNG (for demos with photos that have no faces)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(target)) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
    except (UnidentifiedImageError, OSError):
        raise ValueError("the target image could not be decoded") from None
    return buffer.getvalue()


ENGINES: dict[str, Engine] = {"faceswap": faceswap_engine, "echo": echo_engine}


def run_engine(engine: Engine, source: bytes, target: bytes) -> tuple[bytes | None, str | None]:
    """(PNG, None) or (None, failReason). Accepts engines returning bytes or an object with `.png`."""
    try:
        result = engine(source, target)
    except Exception as error:
        reason = str(error).strip() or type(error).__name__
        if isinstance(error, ImportError):
            log.error("the face-swap engine cannot be imported: %s", reason)
        else:
            log.info("the engine refused the swap: %s", reason)
        return None, reason
    data = getattr(result, "png", result)
    if not isinstance(data, bytes | bytearray) or not data:
        return None, "[Internal Server Error] the engine returned no image"
    return bytes(data), None
