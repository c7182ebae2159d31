"""The Celery side: beat's retraining entry (called, not waited for), the training queue, and the trigger once
RETRAIN_MIN_NEW_PAIRS new pairs are waiting."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.schedules import crontab

from tests.retraining.conftest import lol_folder, tiny_settings
from web.core.registry import pairs as pair_service
from web.core.registry import services as registry
from worker.celery_app import make_celery
from worker.context import WorkerContext
from worker.retraining_tasks import COLLECT_PAIRS_TASK, RETRAIN_TASK, maybe_trigger, retrain_schedule_entry


def test_the_schedule_comes_from_the_cron_setting(tmp_path: Path) -> None:
    entry = retrain_schedule_entry(tiny_settings(tmp_path, "sqlite://", retrain_schedule="30 2 * * 1"))["retrain"]
    assert entry["task"] == RETRAIN_TASK and entry["options"]["queue"] == "training"
    assert entry["schedule"] == crontab(minute="30", hour="2", day_of_week="1")
    assert retrain_schedule_entry(tiny_settings(tmp_path, "sqlite://", retrain_schedule="")) == {}
    app = make_celery(tiny_settings(tmp_path, "sqlite://"))
    assert "retrain" in app.conf.beat_schedule and "recover-stale-jobs" in app.conf.beat_schedule
    assert app.amqp.router.route({}, RETRAIN_TASK)["queue"].name == "training"
    assert app.amqp.router.route({}, COLLECT_PAIRS_TASK)["queue"].name == "training"


@pytest.mark.slow
def test_calling_the_scheduled_entry_retrains_only_when_new_pairs_arrived(
    ctx: WorkerContext, registered: str, tmp_path: Path
) -> None:
    app = make_celery(ctx.settings)
    entry = app.conf.beat_schedule["retrain"]
    call = app.tasks[entry["task"]]

    assert call.apply(kwargs=entry["kwargs"]).get()["reason"] == "no new pairs since the last run"
    with ctx.sessions() as session:
        assert registry.list_runs(session) == []
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "v", ["9.png"]), True)
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "t", ["2.png"]))

    outcome = call.apply(kwargs=entry["kwargs"]).get()

    assert outcome["status"] == "succeeded" and outcome["decision"] in ("promoted", "kept")
    with ctx.sessions() as session:
        (run,) = registry.list_runs(session)
        assert run.trigger == "schedule" and pair_service.count_new(session) == 0


def test_enough_new_pairs_start_one_retraining(ctx: WorkerContext, tmp_path: Path) -> None:
    sent: list[int] = []
    with ctx.sessions() as session:
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "v", ["9.png"]), True)
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "a", ["2.png"]))
    assert maybe_trigger(ctx, sent.append) is None  # 1 new pair, RETRAIN_MIN_NEW_PAIRS is 2
    with ctx.sessions() as session:
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "b", ["5.png"]))

    run_id = maybe_trigger(ctx, sent.append)

    assert run_id is not None and sent == [run_id]
    assert maybe_trigger(ctx, sent.append) is None  # one is already queued
    with ctx.sessions() as session:
        assert registry.get_run(session, run_id).trigger == "pairs"


def test_a_succeeded_enhancement_batch_sends_its_jobs_to_pair_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.signals import task_success

    from worker import celery_app

    sent: list[tuple] = []
    monkeypatch.setattr(celery_app.app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    enhance = celery_app.app.tasks["worker.enhance_job"]
    task_success.send(sender=enhance, result={"claimed": [1, 2], "succeeded": [1, 2], "failed": []})
    task_success.send(sender=enhance, result={"claimed": [3], "succeeded": [], "failed": [3]})
    assert sent == [(COLLECT_PAIRS_TASK, [[1, 2]], "training")]


def test_a_run_whose_message_was_lost_does_not_block_the_trigger_for_ever(ctx: WorkerContext, tmp_path: Path) -> None:
    from datetime import timedelta

    from web.core.models import utcnow

    with ctx.sessions() as session:
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "v", ["9.png"]), True)
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "a", ["2.png", "5.png"]))
        lost = registry.create_run(session, ctx.settings, "pairs")
        lost.updated_at = utcnow() - timedelta(seconds=ctx.settings.retrain_lock_ttl_s + 1)
        session.commit()
    sent: list[int] = []
    assert maybe_trigger(ctx, sent.append) not in (None, lost.id)
