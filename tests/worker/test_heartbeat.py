"""Leases stay alive while a worker holds its jobs, and only while it does."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.worker.conftest import MakeJob, load_job
from web.core.models import Job, utcnow
from worker import services
from worker.batching import claim_job
from worker.context import WorkerContext
from worker.heartbeat import Heartbeat, touch

pytestmark = pytest.mark.integration

LONG_AGO = timedelta(hours=1)


def _age(ctx: WorkerContext, job_ids: list[int]) -> None:
    with ctx.sessions() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(updated_at=utcnow() - LONG_AGO))
        session.commit()


def test_touch_renews_only_claims_still_held(ctx: WorkerContext, make_job: MakeJob) -> None:
    held, lost = make_job(), make_job()
    with ctx.sessions() as session:
        claims = [claim_job(session, held, lease_s=60), claim_job(session, lost, lease_s=60)]
        session.execute(update(Job).where(Job.id == lost).values(attempts=5))  # someone else's claim now
        session.commit()
        _age(ctx, [held, lost])
        assert touch(session, claims) == 1
    assert utcnow() - load_job(ctx, held).updated_at.replace(tzinfo=utcnow().tzinfo) < timedelta(seconds=30)
    assert utcnow() - load_job(ctx, lost).updated_at.replace(tzinfo=utcnow().tzinfo) > timedelta(minutes=30)


def test_heartbeat_thread_beats_until_the_block_ends(ctx: WorkerContext, make_job: MakeJob) -> None:
    job_id = make_job()
    with ctx.sessions() as session:
        claim = claim_job(session, job_id, lease_s=60)
    with Heartbeat(ctx.sessions, interval_s=0.05) as heartbeat:
        heartbeat.add([claim])
        _age(ctx, [job_id])
        time.sleep(0.6)
        with ctx.sessions() as session:
            assert claim_job(session, job_id, lease_s=60) is None, "the heartbeat kept the lease"
    _age(ctx, [job_id])
    time.sleep(0.2)
    with ctx.sessions() as session:
        assert claim_job(session, job_id, lease_s=60) is not None, "no beats after the block"


def test_a_slow_batch_keeps_its_jobs(ctx: WorkerContext, make_job: MakeJob, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "heartbeat_interval_s", lambda settings: 0.05)
    ids = [make_job(), make_job()]
    taken_over: list[object] = []

    class SlowEnhancer:
        loaded = ctx.enhancer.loaded

        def enhance_many(self, images: list) -> list:
            _age(ctx, ids)  # as if the model had been running for an hour
            time.sleep(0.4)
            with ctx.sessions() as session:
                taken_over.extend(claim_job(session, job_id, lease_s=60) for job_id in ids)
            return ctx.enhancer.enhance_many(images)

    report = services.enhance_batch(replace(ctx, enhancer_override=SlowEnhancer()), ids[0])
    assert taken_over == [None, None], "another worker could not take the jobs of a live batch"
    assert sorted(report.succeeded) == ids
