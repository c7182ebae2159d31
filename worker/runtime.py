"""What a worker process holds: settings, a database session factory, the object store, the model.

Created on first use inside the process that runs tasks, because database connections and HTTP pools must not
cross a fork. Tests build a ``WorkerContext`` directly with their own pieces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from web.core.db import make_session_factory
from web.core.settings import Settings
from web.core.storage import ObjectStorage, build_storage
from worker.model import get_enhancer

if TYPE_CHECKING:
    from mirnet.inference import Enhancer


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    storage: ObjectStorage
    enhancer_override: Enhancer | None = field(default=None, repr=False)

    @property
    def enhancer(self) -> Enhancer:
        """The process's model; loaded on first use unless a test supplied one."""
        if self.enhancer_override is not None:
            return self.enhancer_override
        return get_enhancer(self.settings)


_context: WorkerContext | None = None
_context_pid: int | None = None


def get_context(settings: Settings) -> WorkerContext:
    """This process's context, built on first use (and rebuilt in a forked child)."""
    global _context, _context_pid
    if _context is None or _context_pid != os.getpid():
        _context = WorkerContext(settings, make_session_factory(settings), build_storage(settings))
        _context_pid = os.getpid()
    return _context
