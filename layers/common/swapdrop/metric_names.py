"""Every metric name the code emits, in one place (namespace Swapdrop, POWERTOOLS_METRICS_NAMESPACE).

The template's alarms and dashboard name metrics by string; tests check every name they use is
registered here, that every `add_metric`/`single_metric` in the code names a registered metric, and
that nothing here is dead. Each metric carries Powertools' `service` dimension (the stack's name,
POWERTOOLS_SERVICE_NAME); EXTRA_DIMENSIONS lists the ones that carry more.
"""

from __future__ import annotations

# --- jobs: one count per job at its terminal transition, whichever door it came through (job_metrics)
JOBS_SUCCESS = "JobsSuccess"
JOBS_FAILURE = "JobsFailure"
JOBS_REJECTED = "JobsRejected"
JOBS_CANCELLED = "JobsCancelled"
JOB_DURATION = "JobDuration"
"""Seconds from the target's upload (or the job's creation) to its terminal status; dimension Status too."""
JOBS_FINISHED_BY_CALLBACK = "JobsFinishedByCallback"
"""The terminal status came in a callback from the swap API."""
JOBS_FINISHED_BY_POLL = "JobsFinishedByPoll"
"""The terminal status came from the reconciler polling the swap API."""

# --- submitting
JOBS_CREATED = "JobsCreated"
JOBS_SUBMITTED = "JobsSubmitted"
UPSTREAM_SUBMIT_LATENCY = "UpstreamSubmitLatency"
"""Milliseconds one submit request to the swap API took, whatever its answer."""
SUBMIT_RETRIES = "SubmitRetries"
SUBMITS_REFUSED = "SubmitsRefused"
AMBIGUOUS_SUBMITS = "AmbiguousSubmits"
DUPLICATE_DELIVERIES = "DuplicateDeliveries"
DELIVERIES_DEFERRED = "DeliveriesDeferred"
TASKS_ADOPTED = "TasksAdopted"
ORPHAN_UPSTREAM_TASKS = "OrphanUpstreamTasks"
ORPHAN_TASKS_CANCELLED = "OrphanTasksCancelled"
TARGETS_FETCHED = "TargetsFetched"
UPLOADS_BOUND = "UploadsBound"
UPLOADS_DROPPED = "UploadsDropped"
UNKNOWN_JOB_MESSAGES = "UnknownJobMessages"
MALFORMED_MESSAGES = "MalformedMessages"
UPSTREAM_MEMBER_BENCHED = "UpstreamMemberBenched"
"""An upstream pool member's circuit breaker opened (upstream_pool); dimension Member too."""
UPSTREAM_FAILOVERS = "UpstreamFailovers"
"""A submit moved on to another pool member (the one tried before was full or failing)."""

# --- callbacks, polls and the reconciler
CALLBACKS_FORBIDDEN = "CallbacksForbidden"
CALLBACKS_MALFORMED = "CallbacksMalformed"
SNAPSHOTS_REFUSED = "SnapshotsRefused"
UPSTREAM_SNAPSHOTS_REFUSED = "UpstreamSnapshotsRefused"
UPSTREAM_IDS_INFERRED = "UpstreamIdsInferred"
UPSTREAM_VALUES_IGNORED = "UpstreamValuesIgnored"
UPSTREAM_VALUES_CLAMPED = "UpstreamValuesClamped"
OPEN_JOBS_EXAMINED = "OpenJobsExamined"
JOBS_TIMED_OUT = "JobsTimedOut"
UPLOADS_EXPIRED = "UploadsExpired"
RECONCILE_ERRORS = "ReconcileErrors"
POLL_FAILURES = "PollFailures"

# --- finishing
RESULTS_COPIED = "ResultsCopied"
RESULTS_SUPERSEDED = "ResultsSuperseded"
RESULT_COPY_FAILURES = "ResultCopyFailures"
OUTBOX_DELIVERY_FAILURES = "OutboxDeliveryFailures"
WEBHOOKS_DELIVERED = "WebhooksDelivered"
WEBHOOK_RETRIES = "WebhookRetries"
WEBHOOKS_DISABLED = "WebhooksDisabled"
WEBHOOKS_FAILED = "WebhooksFailed"

# --- jobs API and event entrance
LIST_ITEMS_READ = "ListItemsRead"
UPSTREAM_CANCELS = "UpstreamCancels"
UPSTREAM_CANCELS_MISSED = "UpstreamCancelsMissed"
API_INTERNAL_ERRORS = "ApiInternalErrors"
SWAP_REQUESTS_REJECTED = "SwapRequestsRejected"

JOBS_BY_STATUS: dict[str, str] = {
    "SUCCESS": JOBS_SUCCESS,
    "FAILURE": JOBS_FAILURE,
    "REJECTED": JOBS_REJECTED,
    "CANCELLED": JOBS_CANCELLED,
}
"""Terminal JobStatus value -> the count of jobs that ended so."""

EXTRA_DIMENSIONS: dict[str, tuple[str, ...]] = {
    JOB_DURATION: ("Status",),
    UPSTREAM_VALUES_IGNORED: ("Field",),
    UPSTREAM_VALUES_CLAMPED: ("Field",),
    UPSTREAM_MEMBER_BENCHED: ("Member",),
}
"""Dimensions a metric carries besides `service` (each emitted with single_metric, one EMF line per value)."""

ALL: frozenset[str] = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
"""Every registered name (the module's upper-case string constants)."""


def jobs_ended(status: str) -> str:
    """The count metric of jobs that reached terminal `status` (a JobStatus value)."""
    return JOBS_BY_STATUS[status]


def dimensions(name: str) -> tuple[str, ...]:
    """The dimension names `name` is emitted with, sorted (Powertools adds `service` to every metric)."""
    return tuple(sorted(("service", *EXTRA_DIMENSIONS.get(name, ()))))
