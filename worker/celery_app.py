"""The Celery application: ``make_celery(settings)``, and ``app`` for ``celery -A worker.celery_app worker``.

Delivery is at-least-once and the job row decides what actually happens: messages are acknowledged after the
task (``acks_late``), a worker takes one message at a time, and a message whose worker process died is
redelivered (``reject_on_worker_lost``; on Redis the unacknowledged message also comes back after the
visibility timeout, which must exceed the hard time limit so a running task is never handed out twice).

Brokers: Redis in production; by default kombu's SQLAlchemy transport over a SQLite file (no server).
No result backend: clients read the job row.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_shutting_down
from kombu import Queue

from web.core.broker import TRAINING_QUEUE, platform_queues, prepare_sqlite_broker
from web.core.queue import ENHANCE_TASK, RETRAIN_TASK
from web.core.settings import Settings
from worker.beat import beat_schedule
from worker.context import ContextPerProcess
from worker.model import EXIT_MODEL_LOAD_FAILED, load_or_stop_worker
from worker.retraining_tasks import (
    COLLECT_PAIRS_TASK,
    register_retraining_tasks,
    retrain_schedule_entry,
    send_pairs_after_enhancement,
)
from worker.tasks import RECOVER_TASK, register_tasks

# Loading TensorFlow and a model in a fresh pool process takes longer than Celery's default 4 s.
PROCESS_START_TIMEOUT_S = 300
MIN_VISIBILITY_TIMEOUT_S = 3600


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        timeout = max(MIN_VISIBILITY_TIMEOUT_S, 2 * settings.task_time_limit)
        return {"visibility_timeout": timeout}
    # kombu's SQLAlchemy transport hands its options to create_engine; it polls once a second.
    return {}


def make_celery(settings: Settings, contexts: ContextPerProcess | None = None) -> Celery:
    """A Celery app wired to ``settings``, with the platform's tasks registered; they get their worker context
    from ``contexts`` (a fresh one unless given)."""
    contexts = contexts or ContextPerProcess(settings)
    prepare_sqlite_broker(settings.broker_url, platform_queues(settings))
    app = Celery("lowlight", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue_name,
        task_queues=[Queue(name) for name in platform_queues(settings)],
        task_routes={
            ENHANCE_TASK: {"queue": settings.queue_name},
            RECOVER_TASK: {"queue": settings.queue_name},
            RETRAIN_TASK: {"queue": TRAINING_QUEUE},
            COLLECT_PAIRS_TASK: {"queue": TRAINING_QUEUE},
        },
        worker_proc_alive_timeout=PROCESS_START_TIMEOUT_S,
        worker_hijack_root_logger=True,
        beat_schedule=beat_schedule(settings, extra=retrain_schedule_entry(settings)),
        timezone="UTC",
        enable_utc=True,
    )
    register_tasks(app, contexts)
    register_retraining_tasks(app, contexts)
    return app


@dataclass
class _WorkerStart:
    """What the signal handlers of one worker share: the worker (set in the parent) and a flag that a pool
    child sets when it cannot load the model (created before the children fork, so they share it)."""

    failed: Synchronized
    worker: Any = None
    worker_pid: int | None = None


def connect_worker_signals(contexts: ContextPerProcess) -> None:
    """Load the model in each pool process; exit non-zero if it cannot be loaded. Once per process."""
    start = _WorkerStart(failed=multiprocessing.Value("b", 0, lock=False))

    def remember_worker(sender: Any = None, **_: Any) -> None:
        start.worker, start.worker_pid = sender, os.getpid()

    def load_model_in_child(**_: Any) -> None:
        load_or_stop_worker(contexts.get().model, start.failed, in_main_process=os.getpid() == start.worker_pid)

    def exit_loudly_if_model_failed(**_: Any) -> None:
        if start.failed.value and start.worker is not None:
            start.worker.exitcode = EXIT_MODEL_LOAD_FAILED

    # weak=False: these closures must live as long as the process.
    worker_init.connect(remember_worker, weak=False)
    worker_process_init.connect(load_model_in_child, weak=False)
    worker_shutting_down.connect(exit_loudly_if_model_failed, weak=False)


_contexts = ContextPerProcess(Settings.from_env())
app = make_celery(_contexts.settings, _contexts)
connect_worker_signals(_contexts)
send_pairs_after_enhancement(app)
