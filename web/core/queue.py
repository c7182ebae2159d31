"""Sending "enhance job N" to the broker by task name, without importing worker/ (and so without TensorFlow).

The web process only needs a Celery producer: ``send_task`` with the registered name and the queue the
worker consumes. The embedded default uses kombu's SQLAlchemy transport (``sqla+sqlite:///var/broker.db``),
which needs no server; production uses Redis.
"""

from __future__ import annotations

import threading

from celery import Celery
from kombu.exceptions import OperationalError

from web.core.broker import platform_queues, prepare_sqlite_broker
from web.core.settings import Settings

# The names the worker registers its tasks under: the one contract between a sender and the worker.
ENHANCE_TASK = "worker.enhance_job"
RETRAIN_TASK = "worker.retrain"
# Fail a request fast when the broker is down instead of hanging on kombu's default retries.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class QueueUnavailable(RuntimeError):
    """The broker could not be reached; the job stays queued in the database."""


class CeleryEnqueuer:
    """Callable ``enqueue(job_id)`` that sends the worker's task by name; also the broker readiness check."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Celery:
        # Built lazily: creating the app and its connection pool is not needed by processes that never send.
        with self._lock:
            if self._app is None:
                prepare_sqlite_broker(self.settings.broker_url, platform_queues(self.settings))
                app = Celery("lowlight-web", broker=self.settings.broker_url, set_as_current=False)
                app.conf.broker_connection_retry_on_startup = False
                app.conf.task_default_queue = self.settings.queue_name
                self._app = app
            return self._app

    def __call__(self, job_id: int) -> None:
        try:
            self.app.send_task(
                ENHANCE_TASK,
                args=[job_id],
                queue=self.settings.queue_name,
                retry=True,
                retry_policy=_RETRY_POLICY,
            )
        except (OperationalError, OSError) as exc:
            raise QueueUnavailable(f"broker unreachable: {exc}") from exc

    def check(self) -> None:
        """Raise QueueUnavailable unless a connection to the broker can be opened now."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2)
        except (OperationalError, OSError) as exc:
            raise QueueUnavailable(f"broker unreachable: {exc}") from exc
