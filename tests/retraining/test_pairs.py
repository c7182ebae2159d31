"""Pairs from contributed jobs and from folders: deduplicated by content, with their origin, and the holdout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.retraining.conftest import SAMPLES, lol_folder
from tests.web.conftest import Images
from web.core.models import Job, JobStatus
from web.core.registry import pairs as pair_service
from web.core.registry.models import Pair
from web.core.storage import job_key
from worker.context import WorkerContext


def _job(ctx: WorkerContext, low: bytes, high: bytes, status: str = "succeeded", contribute: bool = True) -> int:
    with ctx.sessions() as session:
        job = Job(input_sha256=hashlib.sha256(low).hexdigest(), width=600, height=400, status=status)
        job.contribute = contribute
        session.add(job)
        session.flush()
        job.input_key, job.reference_key = job_key(job.id, "input.png"), job_key(job.id, "reference.png")
        ctx.storage.put_bytes(job.input_key, low)
        ctx.storage.put_bytes(job.reference_key, high)
        session.commit()
        return job.id


def test_a_succeeded_contributed_job_yields_one_pair_with_its_origin(ctx: WorkerContext) -> None:
    low, high = (SAMPLES / "low" / "2.png").read_bytes(), (SAMPLES / "high" / "2.png").read_bytes()
    contributed = _job(ctx, low, high)
    _job(ctx, low, high, contribute=False)
    _job(ctx, (SAMPLES / "low" / "5.png").read_bytes(), high, status=JobStatus.QUEUED.value)
    duplicate = _job(ctx, low, high)  # the same pair sent again

    with ctx.sessions() as session:
        created = pair_service.collect_from_jobs(session, ctx.storage, ctx.settings)
        assert [pair.job_id for pair in created] == [contributed]
        assert pair_service.collect_from_jobs(session, ctx.storage, ctx.settings) == []  # idempotent
        (pair,) = session.query(Pair).all()
    assert (pair.origin, pair.source, pair.width, pair.height) == ("job", f"job {contributed}", 600, 400)
    assert pair.low_sha256 == hashlib.sha256(low).hexdigest() and pair.high_sha256 == hashlib.sha256(high).hexdigest()
    assert ctx.storage.get_bytes(pair.low_key) == low and ctx.storage.get_bytes(pair.high_key) == high
    assert not pair.low_key.startswith("jobs/")  # deleting the job keeps the pair
    assert not pair.is_holdout  # contributed pairs never enter the holdout that decides promotion
    assert duplicate != contributed


def test_a_reference_of_another_size_makes_no_pair(ctx: WorkerContext) -> None:
    _job(ctx, (SAMPLES / "low" / "2.png").read_bytes(), Images.png(64, 48))
    with ctx.sessions() as session:
        assert pair_service.collect_from_jobs(session, ctx.storage, ctx.settings) == []


def test_import_dedups_and_sets_aside_a_deterministic_holdout(ctx: WorkerContext, tmp_path: Path) -> None:
    folder = lol_folder(tmp_path / "lol", ["2.png", "5.png", "6.png", "9.png"])
    with ctx.sessions() as session:
        created, duplicates = pair_service.import_folder(session, ctx.storage, ctx.settings, folder)
        assert (len(created), duplicates) == (4, 0)
        assert pair_service.import_folder(session, ctx.storage, ctx.settings, folder) == ([], 4)
        holdout = pair_service.holdout_pairs(session)
        assert holdout and all(pair.holdout_reason == "hash" for pair in holdout)
        rule = [p.content_hash for p in created[1:] if int(p.content_hash[:8], 16) % ctx.settings.holdout_share == 0]
        assert [p.content_hash for p in holdout] == [created[0].content_hash, *rule]
        assert {p.source for p in created} == {f"lol/{n}" for n in ("2.png", "5.png", "6.png", "9.png")}
        assert pair_service.count_new(session) == 4 - len(holdout)


def test_an_operator_holdout_stops_the_automatic_share(ctx: WorkerContext, tmp_path: Path) -> None:
    with ctx.sessions() as session:
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "v", ["9.png"]), True)
        created, _ = pair_service.import_folder(
            session, ctx.storage, ctx.settings, lol_folder(tmp_path / "t", ["2.png", "5.png", "6.png"])
        )
        assert [p.holdout_reason for p in pair_service.holdout_pairs(session)] == ["operator"]
        assert not any(pair.is_holdout for pair in created)


def test_a_folder_without_partners_is_refused(ctx: WorkerContext, tmp_path: Path) -> None:
    folder = lol_folder(tmp_path / "lol", ["2.png"])
    (folder / "high" / "2.png").unlink()
    with ctx.sessions() as session, pytest.raises(pair_service.PairRejected):
        pair_service.import_folder(session, ctx.storage, ctx.settings, folder)
