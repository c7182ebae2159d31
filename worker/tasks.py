"""The Celery tasks: thin, named explicitly, taking ids only; the work lives in ``worker.services``."""

from __future__ import annotations

import logging

from celery import Celery, Task

from web.core.queue import ENHANCE_TASK
from web.core.storage import StorageUnavailable
from worker import services
from worker.batching import lease_seconds, lost_message_after_s, max_attempts
from worker.context import ContextPerProcess
from worker.jobstate import recover_stale

log = logging.getLogger(__name__)

RECOVER_TASK = "worker.recover_stale_jobs"


def register_tasks(app: Celery, contexts: ContextPerProcess) -> None:
    """Define the tasks on ``app``; their options come from the contexts' settings."""
    settings = contexts.settings

    @app.task(name=ENHANCE_TASK, bind=True, max_retries=max_attempts(settings), shared=False)
    def enhance_job(self: Task, job_id: int) -> dict[str, object]:
        """Enhance job ``job_id`` in a batch with other queued jobs; retry it later if storage is down."""
        report = services.enhance_batch(contexts.get(), job_id)
        for other, delay in report.released.items():
            if other != job_id:
                self.apply_async(args=[other], countdown=delay)
        if job_id in report.released:
            reason = StorageUnavailable(f"storage unavailable while processing job {job_id}")
            raise self.retry(exc=reason, countdown=report.released[job_id])
        if report.lease_left_s is not None and self.request.delivery_info.get("redelivered"):
            # Redelivered because the worker running it died: its claim's heartbeat has stopped, so look again
            # once the lease has run out and take the job over (a live claim keeps beating and wins).
            raise self.retry(countdown=report.lease_left_s + 1)
        return {"claimed": report.claimed, "succeeded": report.succeeded, "failed": report.failed}

    @app.task(name=RECOVER_TASK, shared=False)
    def recover_stale_jobs() -> dict[str, list[int]]:
        """Give jobs of dead workers back to the queue and resend messages that may have been lost."""
        ctx = contexts.get()
        with ctx.sessions() as session:
            recovery = recover_stale(
                session, lease_seconds(settings), max_attempts(settings), lost_message_after_s(settings)
            )
        for job_id in recovery.to_enqueue:
            enhance_job.apply_async(args=[job_id])
        return {"requeued": recovery.requeued, "failed": recovery.failed, "resent": recovery.resend}
