"""What a worker process holds: settings, a database session factory, the object store and the served model.

One type for every task, enhancement and retraining alike (a retraining never touches ``enhancer``, so it never
loads the served model). Built on first use inside the process that runs tasks, because database connections
and HTTP pools must not cross a fork: ``ContextPerProcess`` rebuilds it in a forked child. Tests build a
``WorkerContext`` directly with their own pieces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from web.core.db import make_session_factory
from web.core.settings import Settings
from web.core.storage import ObjectStorage, build_storage
from worker.model import ServedModel

if TYPE_CHECKING:
    from mirnet.inference import Enhancer


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    storage: ObjectStorage
    enhancer_override: Enhancer | None = field(default=None, repr=False)
    model: ServedModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.model = ServedModel(self.settings, self.sessions, self.storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerContext:
        return cls(settings, make_session_factory(settings), build_storage(settings))

    @property
    def enhancer(self) -> Enhancer:
        """The process's model; loaded on first use unless a test supplied one."""
        if self.enhancer_override is not None:
            return self.enhancer_override
        return self.model.current()


class ContextPerProcess:
    """The context of the current process, built from ``settings`` on first use and again after a fork.

    A Celery app holds one (``worker.celery_app.make_celery``) and hands it to its tasks and signal handlers.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context: WorkerContext | None = None
        self._pid: int | None = None

    def get(self) -> WorkerContext:
        if self._context is None or self._pid != os.getpid():
            self._context, self._pid = WorkerContext.from_settings(self.settings), os.getpid()
        return self._context
