"""One retraining at a time: a named lock row with an expiry, on PostgreSQL and SQLite alike.

Taking the lock is one atomic statement: an UPDATE that only matches an expired row, else an INSERT that only
succeeds when no row exists. The holder renews it while it works (every progress report); a holder that
crashed stops renewing, and the lock lapses after its TTL, so the next trigger can run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.core.models import utcnow
from web.core.registry.models import TrainingLock

RETRAIN_LOCK = "retrain"


def acquire(session: Session, owner: str, ttl_s: float, name: str = RETRAIN_LOCK, now: datetime | None = None) -> bool:
    """Take the lock for ``ttl_s`` seconds; False if someone else holds it and it has not expired."""
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    taken = session.execute(
        update(TrainingLock)
        .where(TrainingLock.name == name, TrainingLock.expires_at < now)
        .values(owner=owner, expires_at=expires),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    if taken.rowcount == 1:
        return True
    session.add(TrainingLock(name=name, owner=owner, expires_at=expires))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def renew(session: Session, owner: str, ttl_s: float, name: str = RETRAIN_LOCK) -> bool:
    """Push the expiry forward; False if the lock is no longer ours (it lapsed and someone took it)."""
    renewed = session.execute(
        update(TrainingLock)
        .where(TrainingLock.name == name, TrainingLock.owner == owner)
        .values(expires_at=utcnow() + timedelta(seconds=ttl_s)),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    return renewed.rowcount == 1


def release(session: Session, owner: str, name: str = RETRAIN_LOCK) -> None:
    session.execute(
        delete(TrainingLock).where(TrainingLock.name == name, TrainingLock.owner == owner),
        execution_options={"synchronize_session": False},
    )
    session.commit()


def holder(session: Session, name: str = RETRAIN_LOCK, now: datetime | None = None) -> str | None:
    """Who holds the lock now (None when free or expired)."""
    row = session.execute(select(TrainingLock.owner, TrainingLock.expires_at).where(TrainingLock.name == name)).first()
    session.commit()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)  # SQLite
    return row.owner if expires > (now or utcnow()) else None
