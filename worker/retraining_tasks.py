"""Celery tasks of retraining, on the ``training`` queue so enhancement workers are never blocked by it.

- ``worker.retrain(run_id=None, trigger=...)``: run one retraining (``worker.retraining.retrain``). Beat calls it
  on RETRAIN_SCHEDULE without a run id; it then creates the run, unless no new pairs have arrived.
- ``worker.collect_pairs(job_ids)``: turn succeeded contributed jobs into pairs, and start a retraining once
  RETRAIN_MIN_NEW_PAIRS new pairs are waiting. Sent after every enhancement batch that succeeded.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_success

from web.core.broker import TRAINING_QUEUE
from web.core.queue import ENHANCE_TASK, RETRAIN_TASK
from web.core.registry import pairs as pair_service
from web.core.registry import services as registry
from web.core.settings import Settings
from worker.context import ContextPerProcess, WorkerContext
from worker.retraining import retrain

COLLECT_PAIRS_TASK = "worker.collect_pairs"
RETRAIN_TIME_LIMIT_S = 12 * 3600  # a bounded number of steps; this only stops a hung run


def run_retraining(ctx: WorkerContext, run_id: int | None, trigger: str, steps: int | None) -> dict[str, Any]:
    """What the task does, callable without Celery: create the run if needed, run it, report the decision."""
    if run_id is None:
        with ctx.sessions() as session:
            pair_service.collect_from_jobs(session, ctx.storage, ctx.settings)
            if trigger == "schedule" and pair_service.count_new(session) == 0:
                return {"run": None, "status": "skipped", "reason": "no new pairs since the last run"}
            run_id = registry.create_run(session, ctx.settings, trigger, steps).id
    run = retrain(ctx, run_id)
    return {"run": run.id, "status": run.status, "decision": run.decision, "reason": run.reason}


def maybe_trigger(ctx: WorkerContext, send: Any) -> int | None:
    """Start a retraining when enough new pairs wait and none is queued or running; returns its run id."""
    with ctx.sessions() as session:
        if pair_service.count_new(session) < ctx.settings.retrain_min_new_pairs:
            return None
        if registry.current_run(session, stale_after_s=ctx.settings.retrain_lock_ttl_s) is not None:
            return None
        run = registry.create_run(session, ctx.settings, "pairs")
    send(run.id)
    return run.id


def collect_pairs_and_trigger(ctx: WorkerContext, job_ids: list[int] | None, send: Any) -> dict[str, Any]:
    """What the pairs task does: turn succeeded contributed jobs into pairs, then maybe start a retraining."""
    with ctx.sessions() as session:
        created = pair_service.collect_from_jobs(session, ctx.storage, ctx.settings, job_ids)
    return {"pairs": [pair.id for pair in created], "retraining_run": maybe_trigger(ctx, send)}


def retrain_schedule_entry(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's entry for RETRAIN_SCHEDULE (none when it is empty)."""
    fields = settings.retrain_schedule.split()
    if not fields:
        return {}
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    schedule = crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    return {
        "retrain": {
            "task": RETRAIN_TASK,
            "schedule": schedule,
            "kwargs": {"trigger": "schedule"},
            "options": {"queue": TRAINING_QUEUE},
        }
    }


def register_retraining_tasks(app: Celery, contexts: ContextPerProcess) -> None:
    # A retraining is long and must not run twice: no retries, the lock and the run's row decide.
    limits = {"soft_time_limit": RETRAIN_TIME_LIMIT_S, "time_limit": RETRAIN_TIME_LIMIT_S + 60}

    @app.task(name=RETRAIN_TASK, shared=False, **limits)
    def retrain_task(run_id: int | None = None, trigger: str = "schedule", steps: int | None = None) -> dict[str, Any]:
        return run_retraining(contexts.get(), run_id, trigger, steps)

    @app.task(name=COLLECT_PAIRS_TASK, shared=False)
    def collect_pairs(job_ids: list[int] | None = None) -> dict[str, Any]:
        def send(run_id: int) -> None:
            retrain_task.apply_async(kwargs={"run_id": run_id, "trigger": "pairs"})

        return collect_pairs_and_trigger(contexts.get(), job_ids, send)


def send_pairs_after_enhancement(app: Celery) -> None:
    """After each enhancement batch, the training queue turns its succeeded contributed jobs into pairs."""

    def on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
        if getattr(sender, "name", None) == ENHANCE_TASK and isinstance(result, dict) and result.get("succeeded"):
            app.send_task(COLLECT_PAIRS_TASK, args=[result["succeeded"]], queue=TRAINING_QUEUE)

    task_success.connect(on_success, weak=False)
