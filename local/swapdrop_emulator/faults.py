"""Fault injection: a small spec language, and the plan that decides which faults a request gets.

Spec language
-------------
A spec is one or more faults separated by ``;``, e.g. ``latency=1.5; drop_callbacks``.
One fault is ``[SCOPE:]NAME[=VALUE][@PROBABILITY]``:

- SCOPE: which requests it applies to: ``submit`` (the default), ``fetch``, ``list``
  (list-by-condition), ``task_list`` (``GET /mj/task/list``), ``image`` (result image
  downloads) or ``any`` (all five).
- PROBABILITY: 0..1, the chance that the fault applies to a given request (default 1),
  drawn from the plan's seeded random generator.

How the answer goes wrong (any scope):

=========================  ==================================================================
``latency=SECONDS``        answer that much later (a submit is processed first, so its task
                           may already run and call back while the answer is delayed)
``status=HTTP``            answer with that HTTP status: 401 with an empty body (as relays),
                           5xx with an nginx-style HTML page, others with a relay-style JSON
``timeout[=SECONDS]``      hold the connection without answering, then close it (default:
                           ``timeout_hold_seconds``); a submit is NOT accepted
``reset``                  close the connection at once, without an answer
=========================  ==================================================================

Submit only:

=================================  ===========================================================
``code=N``                         answer HTTP 200 with that result code (23, 9, 24, 4, -1 …);
                                   1, 21 and 22 accept the task and report that code
``timeout_after_accept[=SECONDS]`` accept and run the task, but never answer (the client
                                   times out, yet the task exists: "maybe accepted")
``reset_after_accept``             accept and run the task, then close the connection (RST)
``status_after_accept=HTTP``       accept and run the task, then answer that HTTP status
                                   (a relay's 502/504 after its upstream took the task)
``drop_callbacks[=WHICH]``         lose the task's callbacks: all (default), final, progress
``duplicate_callbacks[=N]``        deliver each callback N times (default 2)
``reorder_callbacks[=HOW]``        hold the task's callbacks until it ends, then deliver them
                                   reverse (default: the final one first) or shuffle(d)
``ignore_notify_hook``             drop the notifyHook as relays do: no callback at all
``fail=REASON``                    the task ends FAILURE with this failReason (no swap runs);
                                   percent-escapes are decoded (for non-ASCII in headers)
``expire_results=SECONDS``         the result URL stops working that long after the task ends
``stall[=PERCENT]``                the task stops at IN_PROGRESS PERCENT (default 45) and
                                   never finishes unless driven (succeed/fail)
``odd_outcome=failure|success``    how a task marked by ``odd_snapshot`` ends (default failure)
=================================  ===========================================================

Hostile upstream (the scopes named; in ``submit`` scope the fault follows the task, elsewhere
it changes that one answer):

==============================  ================================================================
``odd_snapshot=KIND``           submit: the task is odd in every report of it (callbacks, fetch,
                                list-by-condition, task/list) and ends FAILURE with the reason
                                "emulated hostile upstream: odd snapshot (KIND)" (no swap runs)
                                unless ``odd_outcome=success``. fetch, list, task_list: the
                                snapshots in that answer are odd (the tasks are unchanged).
                                KINDs in ``hostile.ODD_KINDS``: inf (progress is the raw JSON
                                number ``1e400``), infinity, neg_infinity, nan (raw tokens),
                                negative (-20), huge (``1e30``), unknown_status (non-final
                                snapshots only), missing_id, long_reason (a 1 MiB failReason)
``odd_snapshot_ratio=R``        0 < R <= 1: only a share R is odd, chosen deterministically:
                                in submit scope the 1st, 1+1/R-th, … task that gets the fault;
                                in an answer the 1st, 1+1/R-th, … item (R=0.2: one in five)
``non_list[=SHAPE]``            list, task_list: answer a non-list: object (default: the list
                                wrapped as ``{"code": 1, ..., "result": [...]}``), null, string,
                                number
``drip[=SECONDS]``              image: answer 200 with Content-Length ``drip_length``
                                (1,000,000) and send one byte every SECONDS (default 3) until
                                the client or the emulator gives up; submit: the task's result
                                URL always drips
==============================  ================================================================

Once-only vs sticky
-------------------
- ``FaultPlan.always``: sticky, per run (``EmulatorConfig.faults``, CLI ``--fault``): every
  matching request, subject to its probability.
- ``FaultPlan.next_submits`` (and ``next_fetches``, ``next_lists``, ``next_task_lists``, ``next_images``):
  queues of once-only entries; the next matching request takes the first entry (one spec,
  all of its faults).
- The ``X-Emulator-Fault: SPEC`` header: that request only (unscoped faults take the
  request's scope).

When several apply, latencies add up; for the other kinds the header comes first, then the
once-only entry, then the sticky faults.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .hostile import ODD_ALIASES, ODD_KINDS

SCOPES = ("submit", "fetch", "list", "task_list", "image", "any")
REQUEST_SCOPES = ("submit", "fetch", "list", "task_list", "image")
ANSWER_KINDS = frozenset({"latency", "status", "timeout", "reset"})
SUBMIT_KINDS = frozenset(
    {
        "code",
        "timeout_after_accept",
        "reset_after_accept",
        "status_after_accept",
        "odd_outcome",
        "drop_callbacks",
        "duplicate_callbacks",
        "reorder_callbacks",
        "ignore_notify_hook",
        "fail",
        "expire_results",
        "stall",
    }
)
SNAPSHOT_SCOPES = frozenset({"submit", "fetch", "list", "task_list"})
SCOPED_KINDS: dict[str, frozenset[str]] = {
    "odd_snapshot": SNAPSHOT_SCOPES,
    "odd_snapshot_ratio": SNAPSHOT_SCOPES,
    "non_list": frozenset({"list", "task_list"}),
    "drip": frozenset({"submit", "image"}),
}
"""Kinds that apply in some scopes only (never ``any``)."""
TASK_OR_ANSWER_KINDS = frozenset({"odd_snapshot", "drip"})
"""In submit scope these follow the task; in the other scopes they change one answer."""
KINDS = ANSWER_KINDS | SUBMIT_KINDS | frozenset(SCOPED_KINDS)
_PROBABILITY = re.compile(r"@\s*(\d+(?:\.\d*)?|\.\d+)\s*$")
_SCOPE = re.compile(r"^\s*(" + "|".join(SCOPES) + r")\s*:(.*)$", re.DOTALL)


class FaultSpecError(ValueError):
    """A fault spec that does not parse, or a fault used where it cannot apply."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    value: Any = None
    probability: float = 1.0
    scope: str = "submit"

    def __str__(self) -> str:
        text = "" if self.scope == "submit" else f"{self.scope}:"
        text += self.kind
        if self.value is not None:
            value = self.value
            if isinstance(value, str):
                value = value.replace("%", "%25").replace(";", "%3B").replace("@", "%40")
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
            text += f"={value}"
        if self.probability < 1:
            text += f"@{self.probability:g}"
        return text


# --- parsing ---------------------------------------------------------------------------------


def _seconds(value: str | None) -> float:
    if value is None:
        raise FaultSpecError("needs a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise FaultSpecError(f"{value!r} is not a number of seconds") from None
    if not 0 <= seconds < 86_400:
        raise FaultSpecError(f"{value} seconds is out of range")
    return seconds


def _optional_seconds(value: str | None) -> float | None:
    return None if value is None else _seconds(value)


def _http_status(value: str | None) -> int:
    number = _integer(value)
    if not 200 <= number <= 599:
        raise FaultSpecError(f"{number} is not an HTTP status (200..599)")
    return number


def _integer(value: str | None) -> int:
    if value is None:
        raise FaultSpecError("needs a whole number")
    try:
        return int(value)
    except ValueError:
        raise FaultSpecError(f"{value!r} is not a whole number") from None


def _copies(value: str | None) -> int:
    number = 2 if value is None else _integer(value)
    if not 2 <= number <= 10:
        raise FaultSpecError("duplicate_callbacks takes 2..10 copies")
    return number


def _percent(value: str | None) -> int:
    number = 45 if value is None else _integer(value)
    if not 0 <= number <= 99:
        raise FaultSpecError("stall takes a percentage 0..99")
    return number


def _choice(default: str, *choices: str) -> Callable[[str | None], str]:
    def parse(value: str | None) -> str:
        chosen = (value or default).lower()
        chosen = {"shuffled": "shuffle", "reversed": "reverse"}.get(chosen, chosen)
        if chosen not in choices:
            raise FaultSpecError(f"takes one of {', '.join(choices)}, not {value!r}")
        return chosen

    return parse


def _reason(value: str | None) -> str:
    text = unquote(value or "").strip()
    if not text:
        raise FaultSpecError("fail needs a reason, e.g. fail=no face found in the target image")
    return text


def _odd_kind(value: str | None) -> str:
    kind = (value or "").strip().lower().replace("-", "_")
    kind = ODD_ALIASES.get(kind, kind)
    if kind not in ODD_KINDS:
        raise FaultSpecError(f"takes one of {', '.join(ODD_KINDS)}, not {value!r}")
    return kind


def _ratio(value: str | None) -> float:
    try:
        ratio = float(value or "")
    except ValueError:
        raise FaultSpecError(f"needs a share 0 < R <= 1, not {value!r}") from None
    if not 0 < ratio <= 1:
        raise FaultSpecError(f"needs a share 0 < R <= 1, not {value}")
    return ratio


def _interval(value: str | None) -> float:
    seconds = 3.0 if value is None else _seconds(value)
    if seconds < 0.001:
        raise FaultSpecError("needs at least 0.001 seconds between bytes")
    return seconds


def _nothing(value: str | None) -> None:
    if value is not None:
        raise FaultSpecError("takes no value")


_VALUE_PARSERS: dict[str, Callable[[str | None], Any]] = {
    "latency": _seconds,
    "status": _http_status,
    "timeout": _optional_seconds,
    "reset": _nothing,
    "code": _integer,
    "timeout_after_accept": _optional_seconds,
    "reset_after_accept": _nothing,
    "status_after_accept": _http_status,
    "odd_outcome": _choice("failure", "failure", "success"),
    "odd_snapshot": _odd_kind,
    "odd_snapshot_ratio": _ratio,
    "non_list": _choice("object", "object", "null", "string", "number"),
    "drip": _interval,
    "drop_callbacks": _choice("all", "all", "final", "progress"),
    "duplicate_callbacks": _copies,
    "reorder_callbacks": _choice("reverse", "reverse", "shuffle"),
    "ignore_notify_hook": _nothing,
    "fail": _reason,
    "expire_results": _seconds,
    "stall": _percent,
}


def parse_fault(text: str, default_scope: str = "submit") -> Fault:
    """One fault: ``[SCOPE:]NAME[=VALUE][@PROBABILITY]``."""
    original = text
    scope = default_scope
    matched = _SCOPE.match(text)
    if matched:
        scope, text = matched.group(1), matched.group(2)
    probability = 1.0
    at = _PROBABILITY.search(text)
    if at:
        probability = float(at.group(1))
        text = text[: at.start()]
        if not 0 <= probability <= 1:
            raise FaultSpecError(f"{original.strip()!r}: the probability must lie between 0 and 1")
    name, has_value, value = text.partition("=")
    kind = name.strip().lower().replace("-", "_")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        raise FaultSpecError(f"{original.strip()!r}: unknown fault {kind!r} (known: {known})")
    if kind in SUBMIT_KINDS and scope != "submit":
        raise FaultSpecError(f"{original.strip()!r}: {kind} applies to submits only, not to scope {scope!r}")
    if kind in SCOPED_KINDS and scope not in SCOPED_KINDS[kind]:
        allowed = ", ".join(sorted(SCOPED_KINDS[kind]))
        raise FaultSpecError(f"{original.strip()!r}: {kind} applies to scopes {allowed}, not to {scope!r}")
    try:
        parsed = _VALUE_PARSERS[kind](value.strip() if has_value else None)
    except FaultSpecError as error:
        raise FaultSpecError(f"{original.strip()!r}: {kind} {error}") from None
    return Fault(kind, parsed, probability, scope)


def parse_faults(spec: str | Fault | Iterable[str | Fault], default_scope: str = "submit") -> list[Fault]:
    """A spec (``a; b``), a Fault, or a sequence of either, as a list of faults."""
    if isinstance(spec, Fault):
        return [spec]
    if isinstance(spec, str):
        return [parse_fault(part, default_scope) for part in spec.split(";") if part.strip()]
    faults: list[Fault] = []
    for item in spec:
        faults.extend(parse_faults(item, default_scope))
    return faults


def render(faults: Iterable[Fault]) -> str:
    return "; ".join(str(fault) for fault in faults)


# --- what one request gets -------------------------------------------------------------------


@dataclass
class TaskFaults:
    """The faults that follow a task after its submit was accepted."""

    drop_callbacks: str | None = None
    duplicate_callbacks: int = 1
    reorder_callbacks: str | None = None
    ignore_notify_hook: bool = False
    fail: str | None = None
    expire_results: float | None = None
    stall: int | None = None
    odd_snapshot: str | None = None
    """The task is odd in every report of it (see hostile.py)."""
    odd_outcome: str | None = None
    drip: float | None = None
    """The task's result URL drips one byte every this many seconds."""


@dataclass
class RequestFaults:
    applied: list[Fault] = field(default_factory=list)
    latency: float = 0.0
    status: int | None = None
    code: int | None = None
    timeout: float | None = None
    timeout_after_accept: float | None = None
    reset: bool = False
    reset_after_accept: bool = False
    status_after_accept: int | None = None
    odd_snapshot: str | None = None
    """This answer's snapshots are odd (fetch, list, task_list scopes)."""
    odd_snapshot_ratio: float | None = None
    non_list: str | None = None
    drip: float | None = None
    """This image answer drips."""
    task: TaskFaults = field(default_factory=TaskFaults)

    def add(self, fault: Fault, default_hold: float) -> None:
        self.applied.append(fault)
        kind, value, task = fault.kind, fault.value, self.task
        if kind == "latency":
            self.latency += value
        elif kind == "reset":
            self.reset = True
        elif kind == "reset_after_accept":
            self.reset_after_accept = True
        elif kind in TASK_OR_ANSWER_KINDS and fault.scope == "submit":
            if getattr(task, kind) is None:
                setattr(task, kind, value)
        elif kind in TASK_OR_ANSWER_KINDS or kind in ("odd_snapshot_ratio", "non_list", "status_after_accept"):
            if getattr(self, kind) is None:
                setattr(self, kind, value)
        elif kind in ("timeout", "timeout_after_accept"):
            if getattr(self, kind) is None:
                setattr(self, kind, default_hold if value is None else value)
        elif kind in ("status", "code"):
            if getattr(self, kind) is None:
                setattr(self, kind, value)
        elif kind == "ignore_notify_hook":
            task.ignore_notify_hook = True
        elif kind == "duplicate_callbacks":
            task.duplicate_callbacks = max(task.duplicate_callbacks, value)
        elif getattr(task, kind) is None:
            setattr(task, kind, value)

    def __str__(self) -> str:
        return render(self.applied)


class FaultList(list):
    """Entries (each the tuple of faults of one spec) that are parsed and checked as they are added."""

    def __init__(self, scope: str | None, items: Iterable[Any] = ()) -> None:
        super().__init__()
        self._scope = scope
        self.extend(items)

    def _entry(self, item: Any) -> tuple[Fault, ...]:
        faults = tuple(parse_faults(item, self._scope or "submit"))
        if not faults:
            raise FaultSpecError("an empty fault spec")
        if self._scope:
            wrong = [str(f) for f in faults if f.scope != self._scope]
            if wrong:
                raise FaultSpecError(f"{', '.join(wrong)} cannot go in the once-only {self._scope!r} queue")
        return faults

    def append(self, item: Any) -> None:
        super().append(self._entry(item))

    def insert(self, index: Any, item: Any) -> None:
        super().insert(index, self._entry(item))

    def extend(self, items: Iterable[Any]) -> None:
        if isinstance(items, str | Fault):
            items = [items]
        super().extend([self._entry(item) for item in items])

    def __iadd__(self, items: Iterable[Any]) -> FaultList:  # type: ignore[override]
        self.extend(items)
        return self

    def specs(self) -> list[str]:
        return [render(entry) for entry in self]


class FaultPlan:
    """Per-run (sticky) faults, once-only queues per request kind, and the seeded randomness."""

    def __init__(self, always: Iterable[Any] = (), seed: int | None = None, default_hold: float = 30.0) -> None:
        self._lock = threading.Lock()
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.default_hold = default_hold
        self.always = FaultList(None, always)
        self.next_submits = FaultList("submit")
        self.next_fetches = FaultList("fetch")
        self.next_lists = FaultList("list")
        self.next_task_lists = FaultList("task_list")
        self.next_images = FaultList("image")

    def _queues(self) -> dict[str, FaultList]:
        return {
            "submit": self.next_submits,
            "fetch": self.next_fetches,
            "list": self.next_lists,
            "task_list": self.next_task_lists,
            "image": self.next_images,
        }

    def _queue(self, scope: str) -> FaultList:
        queues = self._queues()
        if scope not in queues:
            raise FaultSpecError(f"scope {scope!r} is for per-run faults only")
        return queues[scope]

    def add(self, spec: Any, *, once: bool = False, count: int = 1) -> None:
        """Sticky faults, or (once=True) `count` once-only entries for the spec's scope."""
        faults = parse_faults(spec)
        if not faults:
            raise FaultSpecError("an empty fault spec")
        if not once:
            self.always.append(faults)
            return
        scopes = {fault.scope for fault in faults}
        if len(scopes) != 1:
            raise FaultSpecError(f"one once-only entry must have one scope, not {sorted(scopes)}")
        queue = self._queue(scopes.pop())
        for _ in range(count):
            queue.append(faults)

    def next(self, spec: Any, count: int = 1) -> None:
        self.add(spec, once=True, count=count)

    def clear(self) -> None:
        with self._lock:
            for queue in (self.always, *self._queues().values()):
                queue.clear()

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self.seed = seed
            self._rng.seed(seed)

    def chance(self) -> float:
        with self._lock:
            return self._rng.random()

    def shuffle(self, items: list[Any]) -> None:
        with self._lock:
            self._rng.shuffle(items)

    def describe(self) -> dict[str, Any]:
        return {
            "always": self.always.specs(),
            "next": {scope: queue.specs() for scope, queue in self._queues().items()},
            "seed": self.seed,
        }

    def resolve(self, scope: str, header: str | None = None) -> RequestFaults:
        """The faults one request of this scope gets (consumes a once-only entry)."""
        candidates: list[Fault] = []
        if header and header.strip():
            candidates.extend(f for f in parse_faults(header, scope) if f.scope in (scope, "any"))
        with self._lock:
            queue = self._queue(scope)
            if queue:
                candidates.extend(list.pop(queue, 0))
            for entry in self.always:
                candidates.extend(f for f in entry if f.scope in (scope, "any"))
            chosen = [f for f in candidates if f.probability >= 1 or self._rng.random() < f.probability]
        faults = RequestFaults()
        for fault in chosen:
            faults.add(fault, self.default_hold)
        return faults
