"""The safety net for callbacks that never come (or come broken), run on a schedule.

For every job the sparse OpenJobsByShard index holds (each of its shards, merged oldest first) that
has had no news for a while; the index projects only what the decisions below need (OpenJob), and
any change is made on the job read or updated by id:
- terminal jobs with work left: copy the result, publish the event;
- overdue jobs: fail them, so no job stays open forever. A job with a task is overdue the job
  timeout after its submit (submittedAt; createdAt on jobs recorded before it); a PENDING job, still
  waiting for upstream capacity, only MaxQueueWaitHours after it was created: waiting is not hanging.
  But first, a PENDING job whose submit may have been sent (its answer lost) is looked for in the swap
  API's task list (by `state`, our job id: on its recorded pool member, else on every member) and its
  task adopted when found; such a job is also looked for as soon as it has had no news for the job
  timeout, while the task list may still hold its task;
- jobs with an upstream task: poll list-by-condition on the pool member that holds the task (one call
  per member; a member whose poll fails does not stop the others) and apply the snapshots exactly as a
  callback would (same SnapshotApplier);
- jobs-API jobs still awaiting their upload once the upload form has expired (plus a grace
  for S3's event to arrive): end them, saying so; the job timeout does not apply to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from swapdrop import state_machine as sm
from swapdrop.finishing import JobFinisher
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, OpenJob, iso, parse_iso, utc_now
from swapdrop.observability import logger, metrics
from swapdrop.snapshots import SnapshotApplier
from swapdrop.task_recovery import TaskFinder, members_to_search, task_of
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import UpstreamError


class TaskPoller(TaskFinder, Protocol):
    def list_tasks(self, task_ids: list[str], task_of_state: Mapping[str, str] | None = None) -> list[TaskSnapshot]: ...


class UpstreamMembers(Protocol):
    """The upstream pool as the reconciler uses it (upstream_pool.UpstreamPool): one client per member."""

    def members(self) -> list[str]:
        """The members' names, in configured order (never empty)."""

    def client(self, member: str | None) -> TaskPoller:
        """That member's client; None, "" or a name no longer in the pool: the first member's."""


@dataclass(slots=True)
class ReconcileReport:
    examined: int = 0
    finished: int = 0
    timed_out: int = 0
    polled: int = 0
    updated: int = 0
    """Jobs changed by a polled snapshot, or by adopting a lost submit's task from the task list."""
    expired: int = 0
    """AWAITING_UPLOAD jobs ended because their target never arrived."""
    errors: int = 0
    moved: int = 0
    """Jobs moved from the unsharded OpenJobs index to OpenJobsByShard (the migration: README)."""
    poll_error: str | None = None
    """Why a poll failed: the error itself with one pool member, else "member: error" per failed member."""


class Reconciler:
    def __init__(
        self,
        jobs: JobStore,
        upstream: UpstreamMembers,
        applier: SnapshotApplier,
        finisher: JobFinisher,
        job_timeout_minutes: int,
        quiet_seconds: int,
        clock: Callable[[], datetime] = utc_now,
        upload_grace_seconds: int = 300,
        max_queue_wait_hours: int = 24,
    ) -> None:
        self._jobs = jobs
        self._upstream = upstream
        self._applier = applier
        self._finisher = finisher
        self._timeout_minutes = job_timeout_minutes
        self._queue_wait_minutes = max_queue_wait_hours * 60
        self._quiet = timedelta(seconds=quiet_seconds)
        self._upload_grace = timedelta(seconds=upload_grace_seconds)
        self._clock = clock
        self._recent: dict[str, list[TaskSnapshot] | None] = {}
        """Each member's task list, read at most once per run and shared by every job that needs it."""

    def run(self, max_jobs: int = 5000) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock()
        self._recent = {}
        to_poll: list[OpenJob] = []
        for job in self._jobs.open_jobs(updated_before=iso(now - self._quiet)):
            if report.examined >= max_jobs:
                break
            report.examined += 1
            if job.legacy:
                self._isolated(job, report, lambda j=job: self._move_to_shards(j, report))
            if job.webhookOutbox and not job.status.is_terminal:  # webhook messages whose hand-over failed
                self._isolated(job, report, lambda j=job: self._finish_current(j))
            if job.taskId and not job.status.is_terminal:
                to_poll.append(job)  # polled first, even when overdue: it may have just finished
            else:
                self._isolated(job, report, lambda j=job: self._settle(j, now, report))
        if to_poll:
            self._poll(to_poll, report)
            for job in to_poll:
                if self._overdue(job, now):
                    self._isolated(job, report, lambda j=job: self._time_out(j, report))
        # Open jobs needing work, every run: a rising line means callbacks or polls are not landing.
        metrics.add_metric(name="OpenJobsExamined", unit="Count", value=report.examined)
        logger.info("reconciled", extra={"report": asdict(report)})
        return report

    def _move_to_shards(self, job: OpenJob, report: ReconcileReport) -> None:
        """A job the unsharded OpenJobs index lists (written before the shards): written as it is, it gets
        its openShard and loses openFlag, so it leaves that index, once. The run then goes on with it."""
        if update_job(self._jobs, job.jobId, sm.reindex).changed:
            report.moved += 1

    def _finish_current(self, job: OpenJob) -> None:
        """The finisher writes the job it is given: give it the whole record, never the index's projection."""
        current = self._jobs.get(job.jobId)
        if current is not None:
            self._finisher.finish(current)

    def _limit_minutes(self, job: Job | OpenJob) -> int:
        """A job still waiting for its task waits for capacity (MaxQueueWaitHours); a task has the job timeout."""
        return self._queue_wait_minutes if job.status is JobStatus.PENDING and not job.taskId else self._timeout_minutes

    def _overdue(self, job: OpenJob, now: datetime) -> bool:
        started = job.createdAt if job.status is JobStatus.PENDING else job.submittedAt or job.createdAt
        return parse_iso(started) + timedelta(minutes=self._limit_minutes(job)) <= now

    def _settle(self, job: OpenJob, now: datetime, report: ReconcileReport) -> None:
        if job.status.is_terminal:
            # The index is eventually consistent: act on the job as it is now, so a result or
            # event that was just handled is not handled twice.
            current = self._jobs.get(job.jobId)
            if current is not None and current.needs_attention:
                self._finisher.finish(current)
                report.finished += 1
            elif current is not None and job.updatedAt == current.updatedAt:
                # Listed, yet nothing left to do, and no write since the index saw it: an index key that
                # code before the shards kept (it keeps attributes it does not know). Rewritten, it leaves.
                update_job(self._jobs, current.jobId, sm.reindex, held=current)
        elif job.status is JobStatus.AWAITING_UPLOAD and job.uploadExpiresAt is not None:
            if now > parse_iso(job.uploadExpiresAt) + self._upload_grace:
                self._expire_upload(job, report)
        elif self._overdue(job, now):
            if job.status is JobStatus.PENDING and job.attempts > 0:
                adopted = self._adopt(job, report)
                if adopted is not None and (adopted.status.is_terminal or adopted.taskId is not None):
                    return  # adopted (submittedAt: now): polled from here on, under the job timeout
            self._time_out(job, report, task_may_exist=sm.submit_in_doubt(job))
        elif sm.submit_in_doubt(job) and parse_iso(job.updatedAt) + timedelta(minutes=self._timeout_minutes) <= now:
            # A lost submit answer and no news for the job timeout: its message is likely gone too. Its task is
            # looked for now, while the member's task list (its latest tasks) may still hold it; the job itself
            # is failed only once MaxQueueWaitHours is over.
            self._adopt(job, report)

    def _adopt(self, job: OpenJob, report: ReconcileReport) -> Job | None:
        """The task a lost submit answer may have created, adopted as a callback would; None if not found.
        Looked for on the member the submit went to, or on every member when none is recorded."""
        task = None
        for member in members_to_search(self._upstream.members(), job.upstreamMember):
            task = task_of(self._recent_tasks(member), job.jobId)
            if task is not None:
                break
        if task is None:
            return None
        decision = self._applier.apply(job.jobId, task, via="reconciler")
        if decision.refusal is None:
            report.updated += 1
            metrics.add_metric(name="TasksAdopted", unit="Count", value=1)
            logger.info("adopted an upstream task of a lost submit", extra={"job_id": job.jobId, "task_id": task.id})
        return decision.job

    def _recent_tasks(self, member: str) -> list[TaskSnapshot]:
        if member not in self._recent:  # one listing per member and run, shared by every job that needs it
            self._recent[member] = None
            try:
                self._recent[member] = self._upstream.client(member).recent_tasks()
            except UpstreamError as error:
                logger.warning("listing recent tasks failed", extra={"member": member, "error": str(error)})
        return self._recent[member] or []

    def _expire_upload(self, job: OpenJob, report: ReconcileReport) -> None:
        def expire(current: Job) -> sm.Decision:
            reason = f"target never uploaded: the upload form expired at {current.uploadExpiresAt}"
            return sm.expire_upload(current, self._clock(), reason, via="reconciler")

        decision = update_job(self._jobs, job.jobId, expire)
        if decision.became_terminal:
            report.expired += 1
            metrics.add_metric(name="UploadsExpired", unit="Count", value=1)
            logger.info("job ended: its target was never uploaded", extra={"job_id": job.jobId})
        self._finisher.finish(decision.job, held=decision.claimed)

    def _time_out(self, job: Job | OpenJob, report: ReconcileReport, task_may_exist: bool = False) -> None:
        limit = self._limit_minutes(job)  # the limit the job overran, as listed: its reason says it
        decision = update_job(
            self._jobs,
            job.jobId,
            lambda j: sm.time_out(j, self._clock(), limit, task_may_exist, via="reconciler"),
        )
        if decision.became_terminal:
            report.timed_out += 1
            metrics.add_metric(name="JobsTimedOut", unit="Count", value=1)
        self._finisher.finish(decision.job, held=decision.claimed)

    def _isolated(self, job: Job | OpenJob, report: ReconcileReport, work: Callable[[], object]) -> None:
        """One broken job must not stop the run: log it and go on with the others."""
        try:
            work()
        except Exception:
            report.errors += 1
            metrics.add_metric(name="ReconcileErrors", unit="Count", value=1)
            logger.exception("reconciling a job failed", extra={"job_id": job.jobId})

    def _poll(self, jobs: list[OpenJob], report: ReconcileReport) -> None:
        """Each job's task on its own member: one list-by-condition per member, each failing on its own."""
        members = self._upstream.members()
        by_member: dict[str, list[OpenJob]] = {}
        for job in jobs:  # a job recorded before the pool, or on a member since removed: the first member
            member = job.upstreamMember if job.upstreamMember in members else members[0]
            by_member.setdefault(member, []).append(job)
        failures: dict[str, str] = {}
        for member, group in by_member.items():
            try:
                followed = {job.jobId: job.taskId for job in group if job.taskId}
                snapshots = self._upstream.client(member).list_tasks(list(followed.values()), task_of_state=followed)
            except UpstreamError as error:
                failures[member] = str(error)
                metrics.add_metric(name="PollFailures", unit="Count", value=1)  # the stack's (dashboard, alarms)
                with single_metric(name="PollFailures", unit=MetricUnit.Count, value=1) as by_member:
                    by_member.add_dimension(name="Member", value=member)  # which member, as UpstreamMemberBenched
                logger.warning("polling the swap API failed", extra={"member": member, "error": str(error)})
                continue
            report.polled += len(group)
            by_task = {snapshot.id: snapshot for snapshot in snapshots}
            for job in group:
                snapshot = by_task.get(job.taskId or "")
                if snapshot is not None:
                    self._isolated(job, report, lambda j=job, s=snapshot: self._apply(j, s, report))
        if failures:
            only = len(members) == 1
            report.poll_error = "; ".join(error if only else f"{member}: {error}" for member, error in failures.items())

    def _apply(self, job: OpenJob, snapshot: TaskSnapshot, report: ReconcileReport) -> None:
        if self._applier.apply(job.jobId, snapshot, via="poll").changed:
            report.updated += 1
