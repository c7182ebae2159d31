"""Fenced final writes and the recovery of jobs whose worker died."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.worker.conftest import MakeJob, load_job
from web.core.models import Job, utcnow
from worker import jobstate
from worker.batching import claim_job

pytestmark = pytest.mark.integration

OUTCOME = jobstate.Success(result_key="jobs/1/result.png", runtime_ms=1.0, batch_size=1, model_version="v")


def test_a_stale_claim_cannot_finish_the_job(ctx, make_job: MakeJob) -> None:
    job_id = make_job()
    with ctx.sessions() as session:
        first = claim_job(session, job_id, lease_s=60)
        session.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow() - timedelta(hours=1)))
        session.commit()
        second = claim_job(session, job_id, lease_s=60)
        assert first is not None and second is not None
        assert not jobstate.mark_succeeded(session, first, OUTCOME)
        assert not jobstate.mark_failed(session, first, "x", "stale")
        assert jobstate.mark_succeeded(session, second, OUTCOME)
        assert not jobstate.mark_succeeded(session, second, OUTCOME), "a job ends exactly once"
    job = load_job(ctx, job_id)
    assert (job.status, job.attempts, job.error_code) == ("succeeded", 2, None)


def test_a_job_canceled_while_processing_stays_canceled(ctx, make_job: MakeJob) -> None:
    job_id = make_job()
    with ctx.sessions() as session:
        claim = claim_job(session, job_id, lease_s=60)
        session.execute(update(Job).where(Job.id == job_id).values(status="canceled"))
        session.commit()
        assert not jobstate.mark_succeeded(session, replace(claim), OUTCOME)
    assert load_job(ctx, job_id).status == "canceled"


def test_recover_stale_requeues_dead_claims_and_resends_forgotten_messages(ctx, make_job: MakeJob) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    dead = make_job(status="processing", attempts=1, started_at=long_ago, updated_at=long_ago)
    hopeless = make_job(status="processing", attempts=3, started_at=long_ago, updated_at=long_ago)
    alive = make_job(status="processing", attempts=1, started_at=long_ago, updated_at=utcnow())  # heartbeat
    fresh = make_job()
    forgotten = make_job()
    with ctx.sessions() as session:
        session.execute(update(Job).where(Job.id == forgotten).values(updated_at=long_ago))
        session.commit()
        recovery = jobstate.recover_stale(session, lease_s=60, attempts_cap=3, lost_message_s=600)
    assert recovery.requeued == [dead]
    assert recovery.failed == [hopeless]
    assert recovery.resend == [forgotten]
    assert recovery.to_enqueue == sorted([dead, forgotten])
    assert load_job(ctx, dead).status == "queued"
    failed = load_job(ctx, hopeless)
    assert failed.status == "failed" and failed.error_code == "worker_lost" and "3 times" in failed.error_message
    assert load_job(ctx, alive).status == "processing"
    assert load_job(ctx, fresh).status == "queued"
