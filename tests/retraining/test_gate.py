"""A real fine-tune of a tiny model on LOL pairs: the gate promotes an honestly better candidate and keeps a
worse one, and both holdout scores are recorded on the run.

Better: trained on pairs of the holdout's own distribution (LOL low -> high). Worse: the promoted model then
fine-tuned on the same images with low and high exchanged (the inverse task), which must lose on the holdout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.retraining.conftest import lol_folder
from web.core.registry import pairs as pair_service
from web.core.registry import services as registry
from web.core.registry.models import Pair, TrainingRun
from worker.context import WorkerContext
from worker.retraining_tasks import run_retraining

pytestmark = pytest.mark.slow


def test_gate_promotes_a_better_candidate_and_keeps_a_worse_one(
    ctx: WorkerContext, registered: str, tmp_path: Path
) -> None:
    with ctx.sessions() as session:
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "val", ["9.png"]), True)
        pair_service.import_folder(session, ctx.storage, ctx.settings, lol_folder(tmp_path / "a", ["2.png", "5.png"]))

    better = run_retraining(ctx, None, "cli", steps=None)

    assert better["status"] == "succeeded" and better["decision"] == "promoted", better
    with ctx.sessions() as session:
        run = session.get(TrainingRun, better["run"])
        assert run.step == run.steps == ctx.settings.retrain_steps and run.loss is not None
        assert run.candidate_psnr - run.active_psnr >= ctx.settings.promote_min_gain_db
        promoted = registry.active_version(session)
        assert promoted.version != registered and promoted.parent_id is not None
        assert promoted.lineage["holdout_pairs"] and promoted.lineage["new_pairs"]
        assert set(promoted.lineage["new_pairs"]).isdisjoint(promoted.lineage["holdout_pairs"])
        assert registry.get_version(session, registered).state == "retired"
        assert all(p.first_run_id == run.id for p in session.query(Pair).filter(Pair.is_holdout.is_(False)))
        pair_service.import_folder(
            session, ctx.storage, ctx.settings, lol_folder(tmp_path / "b", ["2.png", "5.png", "6.png"], swap=True)
        )

    worse = run_retraining(ctx, None, "cli", steps=None)

    assert worse["status"] == "succeeded" and worse["decision"] == "kept", worse
    assert "PSNR gain below" in worse["reason"]
    with ctx.sessions() as session:
        run = session.get(TrainingRun, worse["run"])
        assert run.candidate_psnr < run.active_psnr
        kept = session.get(type(promoted), run.candidate_version_id)
        assert kept.state == "candidate" and kept.reason == worse["reason"]
        assert registry.active_version(session).version == promoted.version
        assert ctx.storage.exists(kept.storage_key) and ctx.storage.exists(kept.card_key)
