"""A classical face swap: put the largest face of ``source`` onto the largest face of ``target``.

Recipe (all CPU, no learned generator):

1. MediaPipe's 478-point face mesh on both images (``landmarks.detect_faces``).
2. Piecewise-affine warp of the source face onto the target's mesh. The triangles are the
   mesh's own tessellation (852 triangles, fixed topology, so a triangle never folds when
   the two faces are in different poses) plus fans that close the eye and mouth openings.
   The warp is one ``cv2.remap``: every target pixel knows its triangle and that
   triangle's affine map back into the source.
   A small source face stretched over a large target face gets a mild unsharp mask.
3. Colour transfer inside the face mask: mean and standard deviation per channel in LAB,
   measured on the skin (eyes, glasses around them and lips left out).
4. The target's inner mouth (teeth, tongue, darkness) is kept.
5. The blend mask is the face oval (its top cut one mesh row down, its jaw pulled in a
   little), eroded by 3% of the face size. It is Poisson-blended with
   ``cv2.seamlessClone(..., NORMAL_CLONE)`` and composited back with an alpha that fades
   to zero at the mask's edge, so every pixel outside the mask is the target's, bit for bit.

Only a region of interest around the target face is processed, so the cost follows the
face's size, not the photo's; the result has the target's full size and is PNG-encoded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from .landmarks import Face, detect_faces

# Larger decoded images are refused (a 50-megapixel photo is still accepted).
MAX_PIXELS = 50_000_000
# The mesh's 468 surface points; 468..477 are the irises, which lie inside the eye openings.
MESH_POINTS = 468

# Closed contours (in order) of the openings the tessellation leaves as holes.
_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
# The blend region: the face oval, but with its top cut down one mesh row (through
# 104-69-108-151-337-299-333) so a fringe in the source or a hat brim in the target is not
# dragged into the forehead.
# fmt: off
BLEND_OUTLINE = (
    151, 337, 299, 333, 298, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 68, 104, 69, 108,
)
# fmt: on
_JAW = (361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132)
_NOSE_TIP = 1
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
INNER_MOUTH = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)


class FaceSwapError(ValueError):
    """Base of the errors a caller should report back to whoever sent the images."""


class InvalidImage(FaceSwapError):
    """The bytes are not an image we can decode (JPEG, PNG, WebP, ...)."""


class NoFaceFound(FaceSwapError):
    """No face was found in one of the two images."""


@dataclass(frozen=True)
class SwapResult:
    png: bytes
    width: int
    height: int
    face_box: tuple[int, int, int, int]  # (x, y, w, h) of the target face that was replaced


def decode_image(data: bytes, role: str = "input") -> np.ndarray:
    """Decode JPEG/PNG/WebP/... bytes to an RGB uint8 array.

    OpenCV's imdecode applies the EXIF orientation (JPEG, PNG and WebP), drops alpha and
    expands greyscale to three channels.
    """
    if not data:
        raise InvalidImage(f"the {role} image is empty")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InvalidImage(f"the {role} image could not be decoded") from exc
    if bgr is None or bgr.size == 0:
        raise InvalidImage(f"the {role} image could not be decoded (not a JPEG, PNG or WebP image?)")
    if bgr.shape[0] * bgr.shape[1] > MAX_PIXELS:
        raise InvalidImage(f"the {role} image is too large ({bgr.shape[1]}x{bgr.shape[0]} pixels)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - imencode of a uint8 BGR image does not fail
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


@cache
def mesh_triangles() -> np.ndarray:
    """(N, 3) landmark indices: the face mesh's tessellation plus fans over the eye and
    mouth openings, computed once per process."""
    from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections

    edges = FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION
    # The tessellation lists each triangle as three consecutive edges a->b, b->c, c->a.
    tris = {tuple(sorted((edges[i].start, edges[i + 1].start, edges[i + 2].start))) for i in range(0, len(edges), 3)}
    for contour in (_RIGHT_EYE, _LEFT_EYE, INNER_MOUTH):
        for a, b in itertools.pairwise(contour[1:]):
            tris.add(tuple(sorted((contour[0], a, b))))
    return np.array(sorted(tris), dtype=np.int32)


def _face_or_raise(rgb: np.ndarray, role: str) -> Face:
    faces = detect_faces(rgb)
    if not faces:
        raise NoFaceFound(f"no face found in the {role} image")
    return faces[0]


def _roi(points: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around the points, grown by margin x its size, clipped to the image."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * (hi - lo).max()
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def _piecewise_affine(src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, size: tuple[int, int]):
    """Warp ``src`` so that src_pts land on dst_pts (both (468+, 2)), triangle by triangle.

    Returns the warped image of ``size`` (w, h) and the mask (uint8 0/255) of the pixels
    covered by a triangle.
    """
    tris = mesh_triangles()
    w, h = size
    # Which triangle covers each destination pixel (-1: none). Rasterised with 4 bits of
    # sub-pixel precision; neighbouring triangles share edges, so there are no gaps.
    index = np.full((h, w), -1, dtype=np.int32)
    fixed = np.round(dst_pts * 16).astype(np.int32)
    for k, tri in enumerate(tris):
        cv2.fillConvexPoly(index, fixed[tri], k, cv2.LINE_8, 4)
    # Affine map of every triangle from destination to source, solved all at once:
    # [x y 1] @ M = [u v]. pinv copes with degenerate triangles (closed eyes, closed mouth).
    d = np.concatenate([dst_pts[tris], np.ones((len(tris), 3, 1), np.float32)], axis=2)  # (N, 3, 3)
    maps = np.linalg.pinv(d.astype(np.float64)) @ src_pts[tris].astype(np.float64)  # (N, 3, 2)
    ys, xs = np.nonzero(index >= 0)
    m = maps[index[ys, xs]]  # (P, 3, 2)
    map_x = np.full((h, w), -1.0, dtype=np.float32)
    map_y = np.full((h, w), -1.0, dtype=np.float32)
    map_x[ys, xs] = xs * m[:, 0, 0] + ys * m[:, 1, 0] + m[:, 2, 0]
    map_y[ys, xs] = xs * m[:, 0, 1] + ys * m[:, 1, 1] + m[:, 2, 1]
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    covered = np.where(index >= 0, np.uint8(255), np.uint8(0))
    return warped, covered


def _transfer_colour(face: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give ``face`` the per-channel LAB mean and spread of ``reference`` inside ``mask``."""
    src = cv2.cvtColor(face.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    sel = mask > 0
    s_mean, s_std = src[sel].mean(axis=0), src[sel].std(axis=0)
    r_mean, r_std = ref[sel].mean(axis=0), ref[sel].std(axis=0)
    # Bounded gain: a flat (or wildly contrasted) region must not blow the face up.
    gain = np.clip(r_std / np.maximum(s_std, 1e-3), 0.5, 2.0)
    out = (src - s_mean) * gain + r_mean
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _scaled_source(rgb: np.ndarray, face: Face, target_face: Face) -> tuple[np.ndarray, np.ndarray]:
    """Crop the source around its face and, when that face is much larger than the
    target's, shrink it first (area filter) so the warp does not alias."""
    x0, y0, x1, y1 = _roi(face.points, rgb.shape, margin=0.15)
    crop = rgb[y0:y1, x0:x1]
    points = face.points - np.array([x0, y0], np.float32)
    scale = np.sqrt(target_face.area / max(face.area, 1.0))
    if scale < 0.75:
        new_size = (max(round(crop.shape[1] * scale), 1), max(round(crop.shape[0] * scale), 1))
        points = points * np.array([new_size[0] / crop.shape[1], new_size[1] / crop.shape[0]], np.float32)
        crop = cv2.resize(crop, new_size, interpolation=cv2.INTER_AREA)
    return crop, points


def swap_face_arrays(source_rgb: np.ndarray, target_rgb: np.ndarray) -> tuple[np.ndarray, Face]:
    """The swap on decoded RGB arrays; returns the new image (the target's size) and the
    target face that was replaced."""
    target_face = _face_or_raise(target_rgb, "target")
    source_face = _face_or_raise(source_rgb, "source")
    return _swap_onto(source_rgb, source_face, target_rgb, target_face), target_face


def _swap_onto(source_rgb: np.ndarray, source_face: Face, target_rgb: np.ndarray, target_face: Face) -> np.ndarray:
    src, src_pts = _scaled_source(source_rgb, source_face, target_face)

    # Everything happens in a box around the target face, padded so that seamlessClone's
    # region never touches the border even when the face does.
    x0, y0, x1, y1 = _roi(target_face.points, target_rgb.shape, margin=0.1)
    pad = 8
    dst = cv2.copyMakeBorder(target_rgb[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    dst_pts = target_face.points - np.array([x0 - pad, y0 - pad], np.float32)
    h, w = dst.shape[:2]

    warped, covered = _piecewise_affine(src, src_pts[:MESH_POINTS], dst_pts[:MESH_POINTS], (w, h))
    upscale = np.sqrt(target_face.area / max(float(np.prod(src_pts.max(axis=0) - src_pts.min(axis=0))), 1.0))
    if upscale > 1.3:
        # A small source face stretched over a large target face is soft; an unsharp mask
        # at the scale of the stretch gives back some of the lost crispness.
        amount = min(0.3 * (upscale - 1.0), 0.6)
        blurred = cv2.GaussianBlur(warped, (0, 0), 0.6 * upscale)
        warped = cv2.addWeighted(warped, 1.0 + amount, blurred, -amount, 0)

    face_size = float((dst_pts.max(axis=0) - dst_pts.min(axis=0)).max())
    # The mesh's outer ring sits on the jaw line and the hairline; pull the blend a little
    # inside it so neither face's outline (or background) is dragged along.
    erode = max(round(face_size * 0.03), 1)
    outline_pts = dst_pts[list(BLEND_OUTLINE)].copy()
    # Under the jaw there is usually shadow (and collar); Poisson blending would pull it
    # into the chin as a dark beard. Pull the jaw part of the outline a little further in.
    jaw = np.isin(np.array(BLEND_OUTLINE), _JAW)
    outline_pts[jaw] += (dst_pts[_NOSE_TIP] - outline_pts[jaw]) * 0.07
    outline = np.zeros((h, w), np.uint8)
    cv2.fillPoly(outline, [np.round(outline_pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    mask = cv2.bitwise_and(outline, covered)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1)))
    mouth = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mouth, [np.round(dst_pts[list(INNER_MOUTH)] * 16).astype(np.int32)], 255, cv2.LINE_8, 4)

    # Colour statistics come from the skin: eyes (and glasses around them) and lips would
    # otherwise dominate the spread and wash the features out.
    features = np.zeros((h, w), np.uint8)
    for contour in (_RIGHT_EYE, _LEFT_EYE, OUTER_LIPS):
        cv2.fillConvexPoly(features, np.round(dst_pts[list(contour)]).astype(np.int32), 255)
    grow = max(round(face_size * 0.05), 1)
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    stats_mask = cv2.bitwise_and(mask, cv2.bitwise_not(features))
    if cv2.countNonZero(stats_mask) < 64:
        stats_mask = cv2.bitwise_and(mask, cv2.bitwise_not(mouth))
    if cv2.countNonZero(stats_mask) < 16:
        raise NoFaceFound("the target face is too small to swap")
    warped = _transfer_colour(warped, dst, stats_mask)

    # Keep the target's inner mouth, feathered so the lips meet it softly.
    feather = max(round(face_size * 0.01) | 1, 3)
    alpha = cv2.GaussianBlur(mouth, (feather, feather), 0).astype(np.float32)[..., None] / 255.0
    warped = (warped * (1 - alpha) + dst * alpha + 0.5).astype(np.uint8)

    # The padding is only a margin for the solver: a face running off the image is
    # blended against the image edge, never into pixels that will be thrown away.
    mask[:pad], mask[-pad:], mask[:, :pad], mask[:, -pad:] = 0, 0, 0, 0
    bx, by, bw, bh = cv2.boundingRect(mask)
    if bw < 4 or bh < 4:
        raise NoFaceFound("the target face is too small to swap")
    # seamlessClone centres the mask's bounding box on this point; with integer halves
    # the patch lands exactly where it was drawn.
    center = (bx + bw // 2, by + bh // 2)
    # A copy: OpenCV 4.14's seamlessClone erodes the mask it is given, in place.
    cloned = cv2.seamlessClone(warped, dst, mask.copy(), center, cv2.NORMAL_CLONE)
    # OpenCV solves over the mask's whole bounding box, with the target as boundary only
    # on that box's edge: pixels outside the mask drift by a few levels, and along the
    # mask's edge the solution can sit a few levels off the target. So composite back with
    # an alpha that is 1 well inside the mask and fades to exactly 0 at its edge: nothing
    # outside the mask changes, and there is no step at the edge.
    ramp = max(round(face_size * 0.02), 2)
    inner = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ramp + 1, 2 * ramp + 1)))
    alpha = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), ramp / 3.0)
    alpha = np.where(mask > 0, alpha, 0.0).astype(np.float32)[..., None]
    blended = (cloned * alpha + dst * (1.0 - alpha) + 0.5).astype(np.uint8)

    out = target_rgb.copy()
    out[y0:y1, x0:x1] = blended[pad : pad + (y1 - y0), pad : pad + (x1 - x0)]
    return out


def swap_faces(source: bytes, target: bytes) -> SwapResult:
    """Put the (largest) face of ``source`` onto the (largest) face of ``target``.

    Raises InvalidImage for bytes that are not an image and NoFaceFound when either image
    has no face; the message says which image.
    """
    source_rgb = decode_image(source, "source")
    target_rgb = decode_image(target, "target")
    result, target_face = swap_face_arrays(source_rgb, target_rgb)
    height, width = result.shape[:2]
    x, y, w, h = target_face.box
    face_box = (x, y, min(w, width - x), min(h, height - y))
    return SwapResult(png=encode_png(result), width=width, height=height, face_box=face_box)
