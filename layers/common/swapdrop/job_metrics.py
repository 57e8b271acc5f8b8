"""What a job's end tells the metrics, recorded once: at its terminal transition.

Every terminal transition goes through `job_updates.update_job` (and a job born REJECTED through
the jobs API's event entrance), so the counts by outcome, the duration and how the news came are
all recorded here, whichever door the job left by (callback, poll, submit refusal, timeout, cancel).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from swapdrop import metric_names as names
from swapdrop.jobs import Job, parse_iso
from swapdrop.observability import metrics

UPLOAD_VIA = "upload"
"""The transition of a jobs-API job whose target arrived (AWAITING_UPLOAD -> PENDING): its clock starts there."""


def record_finished(job: Job) -> None:
    """Count the job by outcome, record its duration and how its terminal status arrived."""
    status = job.status.value
    metrics.add_metric(name=names.jobs_ended(status), unit=MetricUnit.Count, value=1)
    via = job.history[-1].via if job.history else None
    if via == "callback":
        metrics.add_metric(name=names.JOBS_FINISHED_BY_CALLBACK, unit=MetricUnit.Count, value=1)
    elif via == "poll":
        metrics.add_metric(name=names.JOBS_FINISHED_BY_POLL, unit=MetricUnit.Count, value=1)
    seconds = duration_seconds(job)
    if seconds is not None:
        # Its own EMF line: the Status dimension must not spread to the invocation's other metrics.
        with single_metric(name=names.JOB_DURATION, unit=MetricUnit.Seconds, value=seconds) as duration:
            duration.add_dimension(name="Status", value=status)


def duration_seconds(job: Job) -> float | None:
    """Seconds from the target's upload (the job's creation for drop-folder and URL jobs) to its end."""
    if job.finishedAt is None:
        return None
    started = next((step.at for step in job.history if step.via == UPLOAD_VIA), job.createdAt)
    return max(0.0, (parse_iso(job.finishedAt) - parse_iso(started)).total_seconds())
