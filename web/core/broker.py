"""The embedded broker (kombu's SQLAlchemy transport over a SQLite file), made ready once under a file lock.

kombu creates the transport's tables, and a row per queue, the first time each process uses the broker. On a
fresh SQLite file, processes that start together (``make run`` starts web, worker, trainer and beat at once)
race there: one of them fails with "table kombu_queue already exists" or a UNIQUE constraint on the queue's
name. Every process calls :func:`prepare_sqlite_broker` before it sends or consumes; the first one to take the
lock creates the tables and the queues, the others find them made. Other brokers (Redis) need nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable
from pathlib import Path

from kombu import Connection
from sqlalchemy.engine import make_url

from web.core.settings import Settings

TRAINING_QUEUE = "training"


def platform_queues(settings: Settings) -> tuple[str, str]:
    """The broker queues of the platform: enhancement (and recovery) jobs, and retraining on its own queue."""
    return settings.queue_name, TRAINING_QUEUE


def sqlite_broker_path(broker_url: str) -> Path | None:
    """The SQLite file behind a ``sqla+sqlite`` broker URL; None for other brokers and in-memory databases."""
    if not broker_url.startswith("sqla+sqlite"):
        return None
    database = make_url(broker_url.removeprefix("sqla+")).database
    return Path(database) if database and database != ":memory:" else None


def prepare_sqlite_broker(broker_url: str, queues: Iterable[str]) -> None:
    """Create the broker's folder, tables and ``queues`` unless they exist; a no-op for other brokers."""
    path = sqlite_broker_path(broker_url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        with Connection(broker_url) as connection:
            channel = connection.default_channel  # the first channel of a process creates the tables
            for name in queues:
                channel.queue_declare(queue=name)
