"""Keeping claims alive: a thread that touches the claimed jobs' ``updated_at`` while a batch runs.

The heartbeat lives in the process doing the work, so it stops exactly when that process dies (SIGKILL, the
hard time limit, an out-of-memory kill); the jobs' leases then run out within ``lease_seconds`` and the
recovery task or a redelivered message takes them over. Writes are fenced by ``attempts`` like every other
write of a claim, so a heartbeat never revives a job someone else holds now.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from web.core.models import Job, utcnow
from worker.batching import PROCESSING, ClaimedJob

log = logging.getLogger(__name__)


def touch(session: Session, claims: list[ClaimedJob]) -> int:
    """Renew the lease of ``claims`` still held; returns how many were."""
    if not claims:
        return 0
    held = or_(*(and_(Job.id == claim.id, Job.attempts == claim.attempt) for claim in claims))
    statement = update(Job).where(held, Job.status == PROCESSING).values(updated_at=utcnow()).returning(Job.id)
    renewed = len(session.execute(statement, execution_options={"synchronize_session": False}).all())
    session.commit()
    return renewed


class Heartbeat:
    """``with Heartbeat(sessions, interval) as beat: beat.add(claims) ...``: renews the leases until exit."""

    def __init__(self, sessions: sessionmaker[Session], interval_s: float) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self._claims: list[ClaimedJob] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def add(self, claims: list[ClaimedJob]) -> None:
        with self._lock:
            self._claims.extend(claims)

    def beat(self) -> int:
        with self._lock:
            claims = list(self._claims)
        with self.sessions() as session:
            return touch(session, claims)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except SQLAlchemyError as exc:
                # Keep beating: one failed write is not a lost lease; several in a row are, and then the
                # fenced final writes keep the job consistent.
                log.warning("lease heartbeat failed: %s", exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
