"""Several swap-API accounts (or relays) as one: spread submits by free capacity, fail over, bench the failing.

One relay account runs a few swaps at once (midjourney-proxy: 3 running, 10 queued), so a burst
drains as fast as the accounts together allow only if submits go where there is room.

Configuration is the API key secret (keys never in parameters or the environment; one read per
container, cached; the pool changes without a deploy). Its value is either a plain key (one member,
`default`, from UpstreamBaseUrl / UpstreamAuthStyle / UpstreamInstanceId), or a JSON object:
{"apiKey": optional default key, "benchSeconds": optional, "members": [{"name", "baseUrl", "apiKey",
"authStyle", "instanceId", "running", "queued"}, ...]}. A JSON value that is not a valid pool fails
with PoolConfigError naming the field, at the first use, never echoing a key.

Per container, each member has:
- an estimate of its free capacity, learnt from its own answers (code 1: the queue was empty; code 22
  at position p: p were waiting; queue-full: none, until a cooldown of 5 s doubling to 60 s while it
  stays full), less the submits made since; submits pick a member weighted by it;
- a circuit breaker: N consecutive failures (HTTP 5xx/429, no connection, timeouts) bench it for
  benchSeconds; then one trial request closes the breaker or benches it again for twice as long (up
  to 10 min). A key refused (HTTP 401/403) benches it at once.
A queue-full answer or a failure moves the same request to the next member at once; an answer lost
after sending (a task may exist there) is never sent elsewhere. When every member is full or benched,
the answer is a capacity wait (Retryable(capacity=True)): the job waits without spending an attempt.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from swapdrop import metric_names
from swapdrop.config import AuthStyle
from swapdrop.observability import logger, metrics
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import (
    Accepted,
    Rejected,
    Retryable,
    SubmitOutcome,
    SwapRequest,
    UpstreamClient,
    UpstreamError,
)

DEFAULT_MEMBER = "default"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_MEMBERS = 50
DEFAULT_RUNNING = 3
DEFAULT_QUEUED = 10
DEFAULT_BENCH_SECONDS = 60.0
MAX_BENCH_SECONDS = 600.0
FAILURES_TO_BENCH = 3
FULL_COOLDOWN_SECONDS = 5.0
MAX_FULL_COOLDOWN_SECONDS = 60.0


MAX_SECRET_CHARS = 65_536
"""Secrets Manager's own limit on a SecretString: a longer value is not a secret it would hold."""
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""No control characters: a key goes into an HTTP header, an instance id into the request's JSON and logs."""


class PoolConfigError(ValueError):
    """The API key secret holds JSON that is not a valid pool (the message names the field, never a key)."""


@dataclass(frozen=True, slots=True)
class PoolMember:
    name: str
    base_url: str
    api_key: str = field(repr=False)
    auth_style: AuthStyle
    instance_id: str = ""
    running: int = DEFAULT_RUNNING
    queued: int = DEFAULT_QUEUED

    @property
    def capacity(self) -> int:
        """How many tasks it takes before answering queue-full."""
        return self.running + self.queued


@dataclass(frozen=True, slots=True)
class Pool:
    members: tuple[PoolMember, ...]
    bench_seconds: float = DEFAULT_BENCH_SECONDS


# --- parsing the secret ----------------------------------------------------------------------


class _MemberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    name: str = Field(pattern=NAME_PATTERN)
    baseUrl: HttpUrl | None = None
    apiKey: str | None = Field(default=None, min_length=1, pattern=PRINTABLE)
    authStyle: AuthStyle | None = None
    instanceId: str = Field(default="", max_length=256, pattern=PRINTABLE)
    running: int = Field(default=DEFAULT_RUNNING, ge=1, le=1000, strict=True)
    queued: int = Field(default=DEFAULT_QUEUED, ge=0, le=100_000, strict=True)

    @field_validator("instanceId", mode="before")
    @classmethod
    def _instance_text(cls, value: object) -> object:
        """Instance ids are long numbers: accept one written as a JSON number (int only: floats lose digits)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value.strip() if isinstance(value, str) else value


class _PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    apiKey: str | None = Field(default=None, min_length=1, pattern=PRINTABLE)
    benchSeconds: float = Field(default=DEFAULT_BENCH_SECONDS, gt=0, le=3600)
    members: list[_MemberSpec] = Field(min_length=1, max_length=MAX_MEMBERS)


_MEMBER_FIELDS = set(_MemberSpec.model_fields)
_POOL_FIELDS = set(_PoolSpec.model_fields)


def parse_pool(
    secret_value: str, default_base_url: str, default_auth_style: AuthStyle, default_instance_id: str = ""
) -> Pool:
    """The pool a secret value describes: a plain key is one member named `default`."""
    text = secret_value.strip()
    if len(text) > MAX_SECRET_CHARS:
        raise PoolConfigError(
            f"the upstream API key secret is {len(text):,} characters; Secrets Manager holds at most "
            f"{MAX_SECRET_CHARS:,}: it must be a plain key or a pool object"
        )
    if not text.startswith("{"):
        if not re.match(PRINTABLE, text):
            raise PoolConfigError(
                "the upstream API key in the secret holds a control character (a line break?); "
                "a key goes into an HTTP header: store the key alone"
            )
        member = PoolMember(
            DEFAULT_MEMBER, default_base_url.rstrip("/"), text, default_auth_style, default_instance_id.strip()
        )
        return Pool((member,))
    try:
        document = json.loads(text)
    except RecursionError:
        raise PoolConfigError(
            "the upstream API key secret's JSON is nested too deeply; it must be a plain key or a pool object"
        ) from None
    except ValueError as error:
        where = f"line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise PoolConfigError(
            f"the upstream API key secret starts with '{{' but is not valid JSON ({where}); "
            "it must be a plain key or a pool object"
        ) from None
    try:
        spec = _PoolSpec.model_validate(document)
    except ValidationError as error:
        raise PoolConfigError(f"the upstream pool in the API key secret is invalid: {_problems(error)}") from None
    names = [m.name for m in spec.members]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise PoolConfigError(f"the upstream pool names a member twice: {', '.join(duplicates)} (names are unique)")
    members = []
    for index, m in enumerate(spec.members):
        key = m.apiKey or spec.apiKey
        if key is None:
            raise PoolConfigError(
                f"the upstream pool's members[{index}] ({m.name}) has no apiKey, and the pool has no top-level "
                "apiKey for members without their own"
            )
        base_url = str(m.baseUrl).rstrip("/") if m.baseUrl is not None else default_base_url.rstrip("/")
        auth_style = m.authStyle or default_auth_style
        members.append(PoolMember(m.name, base_url, key.strip(), auth_style, m.instanceId, m.running, m.queued))
    return Pool(tuple(members), spec.benchSeconds)


def _problems(error: ValidationError) -> str:
    """Each problem as `field: what is wrong`, never the value (keys must not reach logs)."""
    return "; ".join(f"{_where(problem['loc'])}: {_what(problem)}" for problem in error.errors(include_input=False))


def _what(problem: Any) -> str:
    if problem["type"] == "string_pattern_mismatch" and (problem.get("ctx") or {}).get("pattern") == PRINTABLE:
        return "holds a control character (a line break?)"
    return str(problem["msg"])


def _where(loc: Iterable[int | str]) -> str:
    """The field's path, e.g. members[2].running; a field name we do not know is not echoed (it could be a key)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _MEMBER_FIELDS | _POOL_FIELDS:
            path += f".{part}" if path else part
        else:
            path += ".<an unknown field>" if path else "<an unknown field>"
    return path or "the pool"


# --- the pool --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Health:
    """What this container knows of one member (guarded by the pool's lock)."""

    free: float
    full_until: float = 0.0
    full_cooldown: float = 0.0
    failures: int = 0
    benched_until: float = 0.0
    bench_seconds: float = 0.0
    """The last bench's length (0: the breaker is closed)."""
    trial_in_flight: bool = False


@dataclass(frozen=True, slots=True)
class _Built:
    raw: str
    pool: Pool
    clients: dict[str, UpstreamClient]


def member_clients(timeout_seconds: float, session: Any = None) -> Callable[[PoolMember], UpstreamClient]:
    """One UpstreamClient per member, all on one requests.Session (connections kept per host)."""
    import requests

    shared = session or requests.Session()

    def build(member: PoolMember) -> UpstreamClient:
        key = member.api_key
        return UpstreamClient(member.base_url, lambda: key, member.auth_style, timeout_seconds, session=shared)

    return build


class UpstreamPool:
    """The swap API as the submitter, reconciler and jobs API see it: every member behind one gateway."""

    def __init__(
        self,
        read_secret: Callable[[], str],
        default_base_url: str,
        default_auth_style: AuthStyle,
        default_instance_id: str = "",
        client_factory: Callable[[PoolMember], UpstreamClient] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        failures_to_bench: int = FAILURES_TO_BENCH,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._read_secret = read_secret
        self._defaults = (default_base_url, default_auth_style, default_instance_id)
        self._client_factory = client_factory or member_clients(timeout_seconds)
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not security
        self._failures_to_bench = failures_to_bench
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._health: dict[str, _Health] = {}

    # --- the configuration ---

    def _current(self) -> _Built:
        """The pool as the secret now says (parsed again only when its value changed)."""
        raw = self._read_secret()
        built = self._built
        if built is not None and built.raw == raw:
            return built
        pool = parse_pool(raw, *self._defaults)
        clients = {m.name: self._client_factory(m) for m in pool.members}
        with self._lock:
            old = {m.name: m for m in built.pool.members} if built else {}
            health = {}
            for m in pool.members:  # a member changed in any way (a new key, new limits) starts afresh
                kept = self._health.get(m.name)
                health[m.name] = kept if kept is not None and old.get(m.name) == m else _Health(free=float(m.capacity))
            self._health = health
            self._built = _Built(raw, pool, clients)
        logger.info("upstream pool read", extra={"members": [m.name for m in pool.members]})
        return self._built

    def members(self) -> list[str]:
        """The members' names, in configured order."""
        return [m.name for m in self._current().pool.members]

    def client(self, member: str | None = None) -> UpstreamClient:
        """That member's client; None, "" or a name no longer in the pool: the first member's."""
        built = self._current()
        if member and member in built.clients:
            return built.clients[member]
        return built.clients[built.pool.members[0].name]

    def _resolved(self, member: str | None) -> str:
        built = self._current()
        return member if member and member in built.clients else built.pool.members[0].name

    # --- capacity ---

    def has_capacity(self) -> bool:
        """False when this container saw every member full or benched within their cooldown."""
        built = self._current()
        now = self._monotonic()
        with self._lock:
            return any(self._available(self._health[m.name], now) for m in built.pool.members)

    @staticmethod
    def _available(health: _Health, now: float) -> bool:
        if health.benched_until > now:
            return False
        if health.bench_seconds and health.trial_in_flight:  # one trial at a time after a bench
            return False
        return health.full_until <= now

    def _pick(self, built: _Built, tried: set[str]) -> PoolMember | None:
        """A member not yet tried, not full, not benched: weighted by its free capacity."""
        now = self._monotonic()
        with self._lock:
            for m in built.pool.members:
                health = self._health[m.name]
                if health.full_until and health.full_until <= now:  # its cooldown is over: room for a few, maybe
                    health.full_until = 0.0
                    health.free = max(health.free, float(m.running))
            open_members = [
                m for m in built.pool.members if m.name not in tried and self._available(self._health[m.name], now)
            ]
            if not open_members:
                return None
            with_room = [m for m in open_members if self._health[m.name].free > 0]
            if with_room:
                weights = [self._health[m.name].free for m in with_room]
            else:  # the estimates are only estimates: try anyway, by size
                with_room, weights = open_members, [float(m.capacity) for m in open_members]
            chosen = self._rng.choices(with_room, weights=weights)[0]
            health = self._health[chosen.name]
            if health.bench_seconds:
                health.trial_in_flight = True
            return chosen

    # --- submitting ---

    def submit_swap(self, request: SwapRequest) -> SubmitOutcome:
        """Submit to one member; queue-full or failing members hand the same request to the next at once."""
        built = self._current()
        tried: set[str] = set()
        notes: list[str] = []
        failed: Retryable | None = None
        refused: Rejected | None = None
        while (member := self._pick(built, tried)) is not None:
            if tried:
                metrics.add_metric(name=metric_names.UPSTREAM_FAILOVERS, unit=MetricUnit.Count, value=1)
            tried.add(member.name)
            sent = dataclasses.replace(request, instance_id=member.instance_id)
            try:
                outcome = built.clients[member.name].submit_swap(sent)
            except Exception:
                self._failure(built, member, "an unexpected error")
                raise
            match outcome:
                case Accepted():
                    self._accepted(member, outcome)
                    return dataclasses.replace(outcome, member=member.name)
                case Retryable(maybe_accepted=True):
                    self._failure(built, member, outcome.reason)
                    return dataclasses.replace(outcome, member=member.name)
                case Retryable(queue_full=True):
                    self._full(member)
                    notes.append(f"{member.name}: {outcome.reason}")
                case Retryable():
                    self._failure(built, member, outcome.reason)
                    notes.append(f"{member.name}: {outcome.reason}")
                    failed = dataclasses.replace(outcome, member=member.name)
                case Rejected(key_refused=True):
                    self._bench(built, member, outcome.reason)
                    notes.append(f"{member.name}: {outcome.reason}")
                    refused = outcome
                case Rejected():
                    self._closed(member)  # it answered: the job is what it refused
                    return outcome
        return self._nothing_took_it(built, tried, notes, failed, refused)

    def _nothing_took_it(
        self, built: _Built, tried: set[str], notes: list[str], failed: Retryable | None, refused: Rejected | None
    ) -> SubmitOutcome:
        """No member accepted. A capacity wait when members are full or benched (the failing ones are
        counted by their breakers); the key's refusal when every member refused it; else the failure."""
        now = self._monotonic()
        with self._lock:
            untried = [m.name for m in built.pool.members if m.name not in tried]
            notes += [f"{name}: {'benched' if self._health[name].benched_until > now else 'full'}" for name in untried]
            answered_full = any(self._health[name].full_until > now for name in tried)
        wait = Retryable(f"every upstream member is full ({'; '.join(notes)})"[:1000], capacity=True)
        if (failed is None and refused is None) or untried or answered_full:
            return wait
        return failed or refused or wait  # only failures (the next attempt retries) or refused keys

    # --- what the answers teach ---

    def _accepted(self, member: PoolMember, outcome: Accepted) -> None:
        with self._lock:
            health = self._health[member.name]
            if outcome.code == 22 and outcome.queue_position is not None:  # p were waiting ahead of it
                health.free = float(member.queued - outcome.queue_position - 1)
            elif outcome.code == 1:  # a running slot was free: the queue is empty
                health.free = max(health.free - 1, float(member.queued))
            else:
                health.free -= 1
            health.full_until = health.full_cooldown = 0.0
            self._close(health)

    def _full(self, member: PoolMember) -> None:
        with self._lock:
            health = self._health[member.name]
            health.full_cooldown = min(MAX_FULL_COOLDOWN_SECONDS, (health.full_cooldown * 2) or FULL_COOLDOWN_SECONDS)
            health.full_until = self._monotonic() + health.full_cooldown
            health.free = 0.0
            self._close(health)  # it answered: it works

    def _closed(self, member: PoolMember) -> None:
        with self._lock:
            self._close(self._health[member.name])

    @staticmethod
    def _close(health: _Health) -> None:
        health.failures = 0
        health.bench_seconds = 0.0
        health.trial_in_flight = False

    def _failure(self, built: _Built, member: PoolMember, reason: str) -> None:
        with self._lock:
            health = self._health[member.name]
            health.failures += 1
            due = health.trial_in_flight or health.failures >= self._failures_to_bench
        if due:
            self._bench(built, member, reason)

    def _bench(self, built: _Built, member: PoolMember, reason: str) -> None:
        with self._lock:
            health = self._health[member.name]
            if health.bench_seconds and health.trial_in_flight:  # the trial failed: twice as long
                seconds = min(MAX_BENCH_SECONDS, health.bench_seconds * 2)
            else:
                seconds = min(MAX_BENCH_SECONDS, built.pool.bench_seconds)
            health.bench_seconds = seconds
            health.benched_until = self._monotonic() + seconds
            health.trial_in_flight = False
            health.failures = 0
        with single_metric(name=metric_names.UPSTREAM_MEMBER_BENCHED, unit=MetricUnit.Count, value=1) as benched:
            benched.add_dimension(name="Member", value=member.name)
        logger.warning(
            "upstream member benched", extra={"member": member.name, "seconds": seconds, "why": reason[:300]}
        )

    # --- one member's task operations ---

    def cancel_task(self, task_id: str, member: str | None = None) -> bool | None:
        """Cancel on the member that holds the task (None: the first member, as for jobs from before the pool)."""
        return self.client(member).cancel_task(task_id)

    def recent_tasks(self, member: str | None = None) -> list[TaskSnapshot] | None:
        """One member's latest tasks, or (member None) every member's concatenated; None where no member
        exposes a task list. A member whose list fails is skipped while another answers."""
        if member:
            return self.client(member).recent_tasks()
        built = self._current()
        found: list[TaskSnapshot] | None = None
        error: UpstreamError | None = None
        for m in built.pool.members:
            try:
                listed = built.clients[m.name].recent_tasks()
            except UpstreamError as failure:
                error = error or failure
                continue
            if listed is not None:
                found = [*(found or []), *listed]
        if found is None and error is not None:
            raise error
        return found

    def member_state(self, member: str) -> dict[str, float | int | bool]:
        """What this container knows of a member (for logs, the bench and tests)."""
        name = self._resolved(member)
        now = self._monotonic()
        with self._lock:
            health = self._health[name]
            return {
                "free": health.free,
                "full": health.full_until > now,
                "benched": health.benched_until > now,
                "failures": health.failures,
                "bench_seconds": health.bench_seconds,
            }
