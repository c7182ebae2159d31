"""Ending or giving back a claim, always fenced by the claim's ``attempt`` so each job ends exactly once.

Every write here is ``UPDATE ... WHERE id = :id AND status = 'processing' AND attempts = :attempt``: if the
job was canceled, or recovered and claimed again after this worker's lease expired, the write matches no row
and the function returns False instead of overwriting the newer state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from web.core.models import Job, JobStatus, utcnow
from worker.batching import PROCESSING, QUEUED, ClaimedJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Success:
    result_key: str
    runtime_ms: float
    batch_size: int
    model_version: str
    psnr: float | None = None
    ssim: float | None = None
    note: str | None = None


def _fenced_update(session: Session, claim: ClaimedJob, values: dict[str, object]) -> bool:
    statement = (
        update(Job)
        .where(Job.id == claim.id, Job.status == PROCESSING, Job.attempts == claim.attempt)
        .values(values)
        .returning(Job.id)
    )
    won = session.execute(statement, execution_options={"synchronize_session": False}).first() is not None
    session.commit()
    if not won:
        log.warning("job %s: claim %s is no longer current; not writing %s", claim.id, claim.attempt, values["status"])
    return won


def mark_succeeded(session: Session, claim: ClaimedJob, outcome: Success) -> bool:
    values: dict[str, object] = {
        "status": JobStatus.SUCCEEDED.value,
        "result_key": outcome.result_key,
        "runtime_ms": outcome.runtime_ms,
        "batch_size": outcome.batch_size,
        "model_version": outcome.model_version,
        "psnr": outcome.psnr,
        "ssim": outcome.ssim,
        "note": outcome.note,
        "error_code": None,
        "error_message": None,
        "completed_at": utcnow(),
    }
    won = _fenced_update(session, claim, values)
    if won:
        log.info("job %s succeeded (attempt %s, batch of %s)", claim.id, claim.attempt, outcome.batch_size)
    return won


def mark_failed(session: Session, claim: ClaimedJob, code: str, message: str, batch_size: int | None = None) -> bool:
    values: dict[str, object] = {
        "status": JobStatus.FAILED.value,
        "error_code": code,
        "error_message": message,
        "batch_size": batch_size,
        "completed_at": utcnow(),
    }
    won = _fenced_update(session, claim, values)
    if won:
        log.info("job %s failed (attempt %s): %s: %s", claim.id, claim.attempt, code, message)
    return won


def release(session: Session, claim: ClaimedJob, reason: str) -> bool:
    """Give a claimed job back to the queue (the caller sends it a new message)."""
    won = _fenced_update(session, claim, {"status": QUEUED, "note": reason})
    if won:
        log.info("job %s released after attempt %s: %s", claim.id, claim.attempt, reason)
    return won


@dataclass
class Recovery:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resend: list[int] = field(default_factory=list)

    @property
    def to_enqueue(self) -> list[int]:
        return sorted(set(self.requeued) | set(self.resend))


def recover_stale(
    session: Session, lease_s: float, attempts_cap: int, lost_message_s: float, now: datetime | None = None
) -> Recovery:
    """Undo the claims of dead workers and find queued jobs whose message may have been lost.

    A job ``processing`` without a heartbeat for ``lease_s`` goes back to ``queued`` (or ``failed`` once it has
    used all its attempts: a job that kills every worker must not do so forever). A job ``queued`` and untouched
    for ``lost_message_s`` gets a fresh message; duplicates are harmless because a message for a job that is not
    queued is a no-op.
    """
    now = now or utcnow()
    stale = (Job.status == PROCESSING, Job.updated_at < now - timedelta(seconds=lease_s))
    gave_up = session.execute(
        update(Job)
        .where(*stale, Job.attempts >= attempts_cap)
        .values(
            status=JobStatus.FAILED.value,
            error_code="worker_lost",
            error_message=f"the worker processing this job stopped {attempts_cap} times; giving up",
            completed_at=now,
            updated_at=now,
        )
        .returning(Job.id),
        execution_options={"synchronize_session": False},
    )
    recovery = Recovery(failed=sorted(gave_up.scalars()))
    requeued = session.execute(
        update(Job)
        .where(*stale)
        .values(status=QUEUED, note="requeued: the worker processing it stopped", updated_at=now)
        .returning(Job.id),
        execution_options={"synchronize_session": False},
    )
    recovery.requeued = sorted(requeued.scalars())
    forgotten = session.execute(
        update(Job)
        .where(Job.status == QUEUED, Job.updated_at < now - timedelta(seconds=lost_message_s))
        .values(updated_at=now)
        .returning(Job.id),
        execution_options={"synchronize_session": False},
    )
    recovery.resend = sorted(forgotten.scalars())
    session.commit()
    if recovery.failed or recovery.requeued or recovery.resend:
        log.warning(
            "recovered jobs: requeued %s, failed %s, resent %s",
            recovery.requeued,
            recovery.failed,
            recovery.resend,
        )
    return recovery
