"""The emulator's default engine: a classical, landmark-based face swap (CPU, offline).

Needs requirements-emulator.txt and requirements-emulator-nodeps.txt (dev venv only).
"""

from .engine import (
    FaceSwapError,
    InvalidImage,
    NoFaceFound,
    SwapResult,
    decode_image,
    swap_face_arrays,
    swap_faces,
)
from .landmarks import Face, LandmarkModelMissing, detect_faces, model_path, warm_up

__all__ = [
    "Face",
    "FaceSwapError",
    "InvalidImage",
    "LandmarkModelMissing",
    "NoFaceFound",
    "SwapResult",
    "decode_image",
    "detect_faces",
    "model_path",
    "swap_face_arrays",
    "swap_faces",
    "warm_up",
]
