"""Claiming jobs from the database, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.worker.conftest import MakeJob, load_job
from web.core.models import Job, utcnow
from worker.batching import (
    claim_job,
    claim_queued,
    collect_batch,
    heartbeat_interval_s,
    lease_left_s,
    lease_seconds,
    lost_message_after_s,
)
from worker.context import WorkerContext

pytestmark = pytest.mark.integration


def test_claim_job_takes_a_queued_job_once(ctx: WorkerContext, make_job: MakeJob) -> None:
    job_id = make_job()
    with ctx.sessions() as session:
        claim = claim_job(session, job_id, lease_s=60)
        again = claim_job(session, job_id, lease_s=60)
    assert claim is not None and claim.id == job_id and claim.attempt == 1
    assert again is None
    job = load_job(ctx, job_id)
    assert job.status == "processing" and job.attempts == 1 and job.started_at is not None


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
def test_claim_job_ignores_final_jobs(ctx: WorkerContext, make_job: MakeJob, status: str) -> None:
    job_id = make_job(status=status)
    with ctx.sessions() as session:
        assert claim_job(session, job_id, lease_s=60) is None
    assert load_job(ctx, job_id).status == status


def test_claim_job_takes_over_only_an_expired_lease(ctx: WorkerContext, make_job: MakeJob) -> None:
    long_ago = utcnow() - timedelta(seconds=120)
    live = make_job(status="processing", attempts=1, started_at=long_ago, updated_at=utcnow())
    dead = make_job(status="processing", attempts=1, started_at=long_ago, updated_at=long_ago)
    with ctx.sessions() as session:
        assert claim_job(session, live, lease_s=60) is None
        taken = claim_job(session, dead, lease_s=60)
    assert taken is not None and taken.attempt == 2


def test_claim_queued_takes_the_oldest_up_to_the_limit(ctx: WorkerContext, make_job: MakeJob) -> None:
    ids = [make_job() for _ in range(5)]
    with ctx.sessions() as session:
        claims = claim_queued(session, limit=3)
    assert [c.id for c in claims] == ids[:3]
    with ctx.sessions() as session:
        queued = session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.id)).all()
    assert queued == ids[3:]


def test_claim_queued_skips_rows_locked_by_another_worker(ctx: WorkerContext, make_job: MakeJob) -> None:
    if ctx.sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serializes writers instead")
    ids = [make_job() for _ in range(4)]
    with ctx.sessions() as other_worker, ctx.sessions() as session:
        locked = other_worker.scalars(select(Job.id).order_by(Job.id).limit(2).with_for_update(skip_locked=True)).all()
        started = time.monotonic()
        claims = claim_queued(session, limit=4)
        assert time.monotonic() - started < 2, "claiming must not wait for the other worker's locks"
        other_worker.rollback()
    assert locked == ids[:2]
    assert [c.id for c in claims] == ids[2:]


def test_collect_batch_stops_at_max_batch(ctx: WorkerContext, make_job: MakeJob) -> None:
    ids = [make_job() for _ in range(6)]
    settings = replace(ctx.settings, max_batch=4, max_batch_delay_ms=5000)
    started = time.monotonic()
    batch = collect_batch(ctx.sessions, ids[5], settings)
    assert time.monotonic() - started < 2, "a full batch must not wait out the delay"
    assert [c.id for c in batch] == [ids[5], *ids[:3]]
    assert load_job(ctx, ids[3]).status == "queued"


def test_collect_batch_waits_for_jobs_arriving_within_the_delay(ctx: WorkerContext, make_job: MakeJob) -> None:
    first = make_job()
    settings = replace(ctx.settings, max_batch=3, max_batch_delay_ms=1500)
    late: list[int] = []
    arrival = threading.Timer(0.2, lambda: late.append(make_job()))
    arrival.start()
    started = time.monotonic()
    batch = collect_batch(ctx.sessions, first, settings)
    elapsed = time.monotonic() - started
    arrival.join()
    assert [c.id for c in batch] == [first, *late]
    assert 1.3 < elapsed < 3, "with room left, the batch waits for the whole delay"


def test_collect_batch_is_empty_for_a_job_held_by_a_live_worker(ctx: WorkerContext, make_job: MakeJob) -> None:
    held = make_job(status="processing", attempts=1, started_at=utcnow())
    make_job()
    assert collect_batch(ctx.sessions, held, ctx.settings) == []
    assert load_job(ctx, held).attempts == 1


def test_lease_left_counts_down_from_the_last_heartbeat(ctx: WorkerContext, make_job: MakeJob) -> None:
    beating = make_job(status="processing", attempts=1, updated_at=utcnow() - timedelta(seconds=20))
    silent = make_job(status="processing", attempts=1, updated_at=utcnow() - timedelta(seconds=120))
    queued = make_job()
    with ctx.sessions() as session:
        assert lease_left_s(session, beating, lease_s=30) == pytest.approx(10, abs=2)
        assert lease_left_s(session, silent, lease_s=30) == 0
        assert lease_left_s(session, queued, lease_s=30) is None


def test_leases_are_short_and_renewed_several_times_each(ctx: WorkerContext) -> None:
    assert lease_seconds(ctx.settings) == 30
    assert lease_seconds(replace(ctx.settings, task_soft_time_limit=10, task_time_limit=18)) == 10
    assert heartbeat_interval_s(ctx.settings) == 5
    assert lost_message_after_s(ctx.settings) > ctx.settings.task_time_limit
