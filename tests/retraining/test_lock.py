"""One retraining at a time: the lock holds against a second trigger and lapses when its holder crashed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from web.core.models import utcnow
from web.core.registry import lock
from web.core.registry import services as registry
from web.core.registry.models import RunStatus, TrainingRun
from worker.context import WorkerContext
from worker.retraining import retrain


def test_the_lock_holds_until_released_or_expired(any_ctx: WorkerContext) -> None:
    with any_ctx.sessions() as session:
        assert lock.acquire(session, "first", ttl_s=60)
        assert not lock.acquire(session, "second", ttl_s=60)
        assert lock.holder(session) == "first"
        assert lock.renew(session, "first", ttl_s=60) and not lock.renew(session, "second", ttl_s=60)
        lock.release(session, "second")  # not the holder: nothing happens
        assert lock.holder(session) == "first"
        lock.release(session, "first")
        assert lock.holder(session) is None
        assert lock.acquire(session, "second", ttl_s=60)
        later = utcnow() + timedelta(seconds=61)
        assert lock.acquire(session, "third", ttl_s=60, now=later)


def test_a_second_trigger_is_skipped_while_a_retraining_holds_the_lock(any_ctx: WorkerContext) -> None:
    with any_ctx.sessions() as session:
        assert lock.acquire(session, "run-elsewhere", ttl_s=60)
        second = registry.create_run(session, any_ctx.settings, "api")

    outcome = retrain(any_ctx, second.id)

    assert outcome.status == RunStatus.SKIPPED.value
    assert "another retraining holds the lock (run-elsewhere)" in (outcome.reason or "")
    with any_ctx.sessions() as session:
        assert lock.holder(session) == "run-elsewhere"  # the skipped run did not release someone else's lock


@pytest.mark.parametrize("ttl_s", [1.0])
def test_a_crashed_trainers_lock_expires_and_its_run_is_marked_failed(any_ctx: WorkerContext, ttl_s: float) -> None:
    with any_ctx.sessions() as session:
        crashed = registry.create_run(session, any_ctx.settings, "schedule")
        crashed.status = RunStatus.RUNNING.value
        session.commit()
        # The trainer took the lock and died: nobody renews or releases it.
        assert lock.acquire(session, f"run-{crashed.id}", ttl_s=ttl_s)
        blocked = registry.create_run(session, any_ctx.settings, "api")
    assert retrain(any_ctx, blocked.id).status == RunStatus.SKIPPED.value

    time.sleep(ttl_s + 0.2)
    with any_ctx.sessions() as session:
        next_run = registry.create_run(session, any_ctx.settings, "api")
    outcome = retrain(any_ctx, next_run.id)

    # It got the lock (with no pairs there is nothing to train, which it says).
    assert outcome.status == RunStatus.SKIPPED.value
    assert "lock" not in (outcome.reason or "")
    with any_ctx.sessions() as session:
        assert session.get(TrainingRun, crashed.id).status == RunStatus.FAILED.value
        assert "lock expired" in (session.get(TrainingRun, crashed.id).reason or "")
        assert lock.holder(session) is None  # released after the run
