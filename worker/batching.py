"""Claiming jobs from the database: the job row, not the broker message, decides who works on what.

A claim is a guarded UPDATE from ``queued`` to ``processing`` that bumps ``attempts``; the new value of
``attempts`` is the claim's fencing token, so a worker that lost its claim (it died, its lease expired and
someone else took the job) can never write a final state over the new owner's.

A claim is a lease: while a worker holds jobs, a heartbeat thread (``worker.heartbeat``) touches their
``updated_at`` every ``heartbeat_interval_s``. A job still ``processing`` whose ``updated_at`` is older than
``lease_seconds`` belongs to a dead worker (a killed task takes its heartbeat with it) and may be taken again,
within seconds rather than after the task's hard time limit.

On PostgreSQL extra jobs are picked with ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent workers never
wait on each other; SQLite has one writer at a time, so one ``UPDATE ... WHERE status = 'queued'`` is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from web.core.models import Job, JobStatus, utcnow
from web.core.settings import Settings

POLL_INTERVAL_S = 0.025
MIN_LEASE_S, MAX_LEASE_S = 10.0, 30.0
HEARTBEATS_PER_LEASE = 6
LOST_MESSAGE_GRACE_S = 5

QUEUED = JobStatus.QUEUED.value
PROCESSING = JobStatus.PROCESSING.value


@dataclass(frozen=True)
class ClaimedJob:
    """What the worker needs of a job it holds; ``attempt`` is the fencing token of this claim."""

    id: int
    attempt: int
    input_key: str
    reference_key: str | None


def lease_seconds(settings: Settings) -> float:
    """How long a claim survives without a heartbeat: 30 s, shorter only when the time limits are (tests)."""
    return min(MAX_LEASE_S, max(MIN_LEASE_S, settings.task_time_limit / 4))


def heartbeat_interval_s(settings: Settings) -> float:
    """Several heartbeats fit in a lease, so a slow database write or two never loses a live claim."""
    return lease_seconds(settings) / HEARTBEATS_PER_LEASE


def lost_message_after_s(settings: Settings) -> float:
    """A job queued and untouched this long may have lost its message (no task can have been running)."""
    return settings.task_time_limit + LOST_MESSAGE_GRACE_S


def max_attempts(settings: Settings) -> int:
    """Claims a job may use up (storage retries, lost workers) before it is failed for good."""
    return settings.storage_retry_attempts + 1


def _claimed_values(now: datetime) -> dict[str, object]:
    return {"status": PROCESSING, "attempts": Job.attempts + 1, "started_at": now, "updated_at": now}


_RETURNED = (Job.id, Job.attempts, Job.input_key, Job.reference_key)


def _as_claims(rows: list) -> list[ClaimedJob]:
    return [ClaimedJob(id=r[0], attempt=r[1], input_key=r[2], reference_key=r[3]) for r in rows]


def claim_job(session: Session, job_id: int, lease_s: float, now: datetime | None = None) -> ClaimedJob | None:
    """Claim one job if it is queued, or processing under an expired lease; None if it is not ours to run."""
    now = now or utcnow()
    takeable = or_(
        Job.status == QUEUED,
        and_(Job.status == PROCESSING, Job.updated_at < now - timedelta(seconds=lease_s)),
    )
    statement = update(Job).where(Job.id == job_id, takeable).values(_claimed_values(now)).returning(*_RETURNED)
    rows = session.execute(statement, execution_options={"synchronize_session": False}).all()
    session.commit()
    claims = _as_claims(rows)
    return claims[0] if claims else None


def claim_queued(session: Session, limit: int, now: datetime | None = None) -> list[ClaimedJob]:
    """Claim up to ``limit`` queued jobs, oldest first, skipping rows other workers are claiming right now."""
    if limit <= 0:
        return []
    now = now or utcnow()
    oldest = select(Job.id).where(Job.status == QUEUED).order_by(Job.created_at, Job.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(oldest.with_for_update(skip_locked=True)))
        if not ids:
            session.commit()
            return []
        target = Job.id.in_(ids)
    else:
        target = Job.id.in_(oldest.scalar_subquery())
    statement = update(Job).where(target, Job.status == QUEUED).values(_claimed_values(now)).returning(*_RETURNED)
    rows = session.execute(statement, execution_options={"synchronize_session": False}).all()
    session.commit()
    return sorted(_as_claims(rows), key=lambda claim: claim.id)


def lease_left_s(session: Session, job_id: int, lease_s: float, now: datetime | None = None) -> float | None:
    """Seconds until the claim on a ``processing`` job expires (0 if it has); None if the job is not processing."""
    row = session.execute(select(Job.status, Job.updated_at).where(Job.id == job_id)).first()
    session.commit()
    if row is None or row.status != PROCESSING:
        return None
    updated_at = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)  # SQLite
    return max(0.0, lease_s - ((now or utcnow()) - updated_at).total_seconds())


def collect_batch(
    sessions: sessionmaker[Session],
    job_id: int,
    settings: Settings,
    on_claim: Callable[[list[ClaimedJob]], None] = lambda claims: None,
    clock: Callable[[], float] = time.monotonic,
) -> list[ClaimedJob]:
    """Claim job ``job_id`` and then up to ``max_batch - 1`` queued jobs, waiting at most the batch delay.

    ``on_claim`` sees every claim as soon as it is made (the heartbeat starts keeping it alive). Returns [] when
    the job is final, canceled, or held by a live worker (the message is then a no-op).
    """
    with sessions() as session:
        first = claim_job(session, job_id, lease_seconds(settings))
        if first is None:
            return []
        batch = [first]
        on_claim(batch)
        deadline = clock() + settings.max_batch_delay_ms / 1000
        while True:
            more = claim_queued(session, settings.max_batch - len(batch))
            if more:
                on_claim(more)
                batch += more
            if len(batch) >= settings.max_batch or clock() >= deadline:
                return batch
            time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - clock())))
