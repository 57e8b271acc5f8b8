"""A hostile upstream: odd task snapshots, non-list answers, and JSON text Python cannot write.

Upstream servers are not Python: a C# or Java server (or a buggy relay) can send the JSON
number ``1e400`` (``json.loads`` turns it into ``inf``), or the non-standard tokens
``Infinity``, ``-Infinity`` and ``NaN``. ``Raw`` puts such text into a payload verbatim, and
``dumps`` is the one JSON writer of the emulator's answers and callbacks.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

ODD_KINDS = (
    "inf",
    "infinity",
    "neg_infinity",
    "nan",
    "negative",
    "huge",
    "unknown_status",
    "missing_id",
    "long_reason",
)
ODD_ALIASES = {"1e400": "inf", "_infinity": "neg_infinity", "1e30": "huge"}
"""Other spellings accepted in specs (``-infinity`` becomes ``_infinity`` once dashes are folded)."""
UNKNOWN_STATUS = "EMULATED_UNKNOWN_STATUS"
LONG_REASON_BYTES = 1024 * 1024
NON_LIST_SHAPES = ("object", "null", "string", "number")


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text written as it is (e.g. ``1e400``, ``NaN``), not as a string."""

    text: str

    def __str__(self) -> str:
        return self.text


def dumps(payload: Any) -> str:
    """json.dumps (UTF-8 text, not ASCII-escaped) that writes ``Raw`` values verbatim."""
    raws: dict[str, str] = {}
    nonce = secrets.token_hex(8)

    def default(value: Any) -> Any:
        if isinstance(value, Raw):
            marker = f"\x00raw-{nonce}-{len(raws)}\x00"
            raws[json.dumps(marker)] = value.text
            return marker
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(payload, ensure_ascii=False, default=default)
    for marker, raw in raws.items():
        text = text.replace(marker, raw)
    return text


_ODD_PROGRESS: dict[str, Any] = {
    "inf": Raw("1e400"),
    "infinity": Raw("Infinity"),
    "neg_infinity": Raw("-Infinity"),
    "nan": Raw("NaN"),
    "negative": -20,
    "huge": Raw("1e30"),
}


def odd_reason(kind: str) -> str:
    return f"emulated hostile upstream: odd snapshot ({kind})"


def long_reason(reason: str) -> str:
    """``reason`` padded to LONG_REASON_BYTES (ASCII, so characters and bytes agree)."""
    head = f"{reason}: "
    return head + "x" * (LONG_REASON_BYTES - len(head.encode()))


def odd_snapshot(snapshot: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of the snapshot made odd in one way. An unknown status replaces only a non-final
    one (so the task still ends visibly); the others apply to every snapshot, final ones too."""
    odd = dict(snapshot)
    if kind in _ODD_PROGRESS:
        odd["progress"] = _ODD_PROGRESS[kind]
    elif kind == "unknown_status":
        if odd.get("status") not in ("SUCCESS", "FAILURE", "CANCEL"):
            odd["status"] = UNKNOWN_STATUS
    elif kind == "missing_id":
        odd.pop("id", None)
    elif kind == "long_reason":
        odd["failReason"] = long_reason(odd.get("failReason") or odd_reason(kind))
    else:
        raise ValueError(f"unknown odd snapshot kind {kind!r}")
    return odd


def picked(index: int, ratio: float | None) -> bool:
    """Whether the index-th (0-based) candidate is picked when a share `ratio` is wanted: the
    first of every 1/ratio (ratio 0.2 picks 0, 5, 10, ...; None or 1 picks all)."""
    if ratio is None or ratio >= 1:
        return True
    return math.ceil(round((index + 1) * ratio, 9)) > math.ceil(round(index * ratio, 9))


def odd_answer(snapshots: list[dict[str, Any]], kind: str | None, ratio: float | None) -> list[dict[str, Any]]:
    """The snapshots of one answer, the picked share of them made odd."""
    if kind is None:
        return snapshots
    return [odd_snapshot(s, kind) if picked(i, ratio) else s for i, s in enumerate(snapshots)]


def non_list(shape: str, snapshots: list[dict[str, Any]]) -> Any:
    """What a broken relay answers instead of the list."""
    if shape == "object":
        return {"code": 1, "description": "success", "result": snapshots}
    if shape == "null":
        return None
    if shape == "string":
        return "list-by-condition is not available"
    if shape == "number":
        return len(snapshots)
    raise ValueError(f"unknown non-list shape {shape!r}")
