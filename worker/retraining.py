"""The retraining service: fine-tune the active model on new pairs plus a replay sample, measure candidate and
active on the holdout in the same run, and let the gate promote the candidate or keep it with the reason.

Only one retraining runs at a time (``web.core.registry.lock``): the lock is renewed at every progress report, so a
trainer that crashes stops holding it after ``RETRAIN_LOCK_TTL_S``. Runs whose trainer died are marked failed
by the next run that gets the lock. TensorFlow is imported inside the functions that train and evaluate.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.orm import Session

from mirnet.choices import DEFAULT_PIXEL_LOSS
from web.core.models import utcnow
from web.core.registry import lock
from web.core.registry import pairs as pair_service
from web.core.registry import services as registry
from web.core.registry.models import ModelVersion, Pair, RunStatus, TrainingRun
from web.core.settings import Settings
from web.core.storage import ObjectStorage
from worker.context import WorkerContext
from worker.serving import serving_enhancer

log = logging.getLogger(__name__)

PROGRESS_REPORTS = 20  # progress rows per run (and lock renewals)


class LockLost(RuntimeError):
    """The retraining lock expired while this run trained (it was stalled longer than the TTL)."""


def retrain(ctx: WorkerContext, run_id: int) -> TrainingRun:
    """Run training run ``run_id`` if the lock is free; otherwise mark it skipped. Returns the final row."""
    owner = f"run-{run_id}"
    with ctx.sessions() as session:
        run = registry.get_run(session, run_id)
        if run.run_status.is_final:
            return run  # a redelivered message: the run already happened
        if not lock.acquire(session, owner, ctx.settings.retrain_lock_ttl_s):
            holder = lock.holder(session)
            return registry.finish_run(session, run, RunStatus.SKIPPED, f"another retraining holds the lock ({holder})")
        try:
            _fail_orphaned_runs(ctx, session, run_id)
            run.status, run.started_at = RunStatus.RUNNING.value, utcnow()
            session.commit()
            return _run(ctx, session, run, owner)
        except Exception as exc:
            session.rollback()
            registry.finish_run(session, run, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            lock.release(session, owner)


def _fail_orphaned_runs(ctx: WorkerContext, session: Session, run_id: int) -> None:
    """Runs still 'running' while we hold the lock belong to a trainer that died; runs queued for longer than
    the lock's TTL lost their message."""
    now = utcnow()
    lapsed = (
        (TrainingRun.status == RunStatus.RUNNING.value, "the trainer stopped (its lock expired)"),
        (
            and_(
                TrainingRun.status == RunStatus.QUEUED.value,
                TrainingRun.updated_at < now - timedelta(seconds=ctx.settings.retrain_lock_ttl_s),
            ),
            "its task never started (the message was lost)",
        ),
    )
    for condition, reason in lapsed:
        session.execute(
            update(TrainingRun)
            .where(condition, TrainingRun.id != run_id)
            .values(status=RunStatus.FAILED.value, reason=reason, completed_at=now),
            execution_options={"synchronize_session": False},
        )
    session.commit()


def _run(ctx: WorkerContext, session: Session, run: TrainingRun, owner: str) -> TrainingRun:
    settings = ctx.settings
    pair_service.collect_from_jobs(session, ctx.storage, settings)
    active = registry.active_version(session) or _register_configured(ctx, session)
    if active is None:
        return registry.finish_run(session, run, RunStatus.SKIPPED, "the registry has no active model version")
    new, holdout = pair_service.new_training_pairs(session), pair_service.holdout_pairs(session)
    replay = _replay_sample(pair_service.earlier_training_pairs(session), len(new), settings, run.id)
    if not new and not replay:
        replay = pair_service.earlier_training_pairs(session)  # an on-demand run with nothing new: all of it
    if not new and not replay:
        return registry.finish_run(session, run, RunStatus.SKIPPED, "there are no training pairs")
    if not holdout:
        return registry.finish_run(session, run, RunStatus.SKIPPED, "there is no holdout pair to measure on")
    run.base_version_id, run.new_pairs, run.replay_pairs = active.id, len(new), len(replay)
    run.holdout_pairs = len(holdout)
    session.commit()
    with tempfile.TemporaryDirectory(prefix=f"retrain-{run.id}-") as tmp:
        work = Path(tmp)
        active_path = _download_version(ctx.storage, active, work / "active")
        data = _materialize(ctx.storage, new + replay, work / "data")
        reporter = _Progress(ctx, session, run, owner)
        candidate_path = _fine_tune(settings, active, active_path, data, work / "run", run, reporter)
        inherit_inference(active_path, candidate_path)
        arrays = _holdout_arrays(ctx.storage, holdout)
        active_scores = _evaluate(settings, active_path, arrays)
        candidate_scores = _evaluate(settings, candidate_path, arrays)
        lineage = {"new_pairs": [p.id for p in new], "replay_pairs": [p.id for p in replay]}
        lineage["holdout_pairs"] = [p.id for p in holdout]
        return _decide(ctx, session, run, active, candidate_path, active_scores, candidate_scores, lineage, new)


def _register_configured(ctx: WorkerContext, session: Session) -> ModelVersion | None:
    """An empty registry (no worker has started yet) gets the configured model, as a worker would register it."""
    from mirnet.models import ModelLoadError, resolve_model_path

    try:
        path = resolve_model_path(ctx.settings.model)
    except ModelLoadError as exc:
        log.warning("no model to register: %s", exc)
        return None
    registry.register_initial(session, ctx.storage, path)
    return registry.active_version(session)


def _replay_sample(earlier: list[Pair], new_count: int, settings: Settings, seed: int) -> list[Pair]:
    wanted = min(len(earlier), round(new_count * settings.retrain_replay_fraction))
    return sorted(random.Random(seed).sample(earlier, wanted), key=lambda p: p.id) if wanted else []


def _decide(
    ctx: WorkerContext,
    session: Session,
    run: TrainingRun,
    active: ModelVersion,
    candidate_path: Path,
    active_scores: tuple[float, float],
    candidate_scores: tuple[float, float],
    lineage: dict[str, Any],
    new: list[Pair],
) -> TrainingRun:
    decision = registry.gate(ctx.settings, active_scores, candidate_scores)
    card = json.loads(candidate_path.with_suffix(".json").read_text())
    card.update(parent=active.version, training_run=run.id)
    count = len(lineage["holdout_pairs"])
    candidate = registry.register_version(
        session,
        ctx.storage,
        candidate_path.read_bytes(),
        card,
        parent=active,
        run_id=run.id,
        lineage=lineage,
        scores=(*candidate_scores, count),
        reason=decision.reason,
    )
    active.holdout_psnr, active.holdout_ssim, active.holdout_pairs = (*active_scores, count)
    for pair in new:
        pair.first_run_id = run.id
    session.commit()
    if decision.promote:
        registry.promote(session, candidate.version, reason=decision.reason)
    return registry.finish_run(
        session,
        run,
        RunStatus.SUCCEEDED,
        decision.reason,
        candidate_version_id=candidate.id,
        active_psnr=active_scores[0],
        active_ssim=active_scores[1],
        candidate_psnr=candidate_scores[0],
        candidate_ssim=candidate_scores[1],
        decision="promoted" if decision.promote else "kept",
    )


class _Progress:
    """Writes step, loss and ETA on the run's row, and renews the lock, a few times per run."""

    def __init__(self, ctx: WorkerContext, session: Session, run: TrainingRun, owner: str) -> None:
        self.ctx, self.session, self.run, self.owner = ctx, session, run, owner
        self.started = time.monotonic()

    def __call__(self, step: int, loss: float | None) -> None:
        elapsed = time.monotonic() - self.started
        self.run.step, self.run.loss = step, loss
        self.run.eta_s = round(elapsed / max(step, 1) * (self.run.steps - step), 1)
        self.session.commit()
        if not lock.renew(self.session, self.owner, self.ctx.settings.retrain_lock_ttl_s):
            raise LockLost(f"the retraining lock expired during run {self.run.id}")
        log.info(
            "training run %s: step %s/%s, loss %s, ETA %s s", self.run.id, step, self.run.steps, loss, self.run.eta_s
        )


# The TensorFlow side -------------------------------------------------------------------------------------------
def _download_version(storage: ObjectStorage, version: ModelVersion, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    path.write_bytes(storage.get_bytes(version.storage_key))
    path.with_suffix(".json").write_bytes(storage.get_bytes(version.card_key))
    return path


def _materialize(storage: ObjectStorage, pairs: list[Pair], folder: Path) -> Path:
    """The pairs as a LOL-style folder (low/ and high/ with the same names), which the trainer reads."""
    for sub in ("low", "high"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        extension = pair.low_key.rsplit(".", 1)[-1]
        (folder / "low" / f"{pair.id}.{extension}").write_bytes(storage.get_bytes(pair.low_key))
        (folder / "high" / f"{pair.id}.{extension}").write_bytes(storage.get_bytes(pair.high_key))
    return folder


def _fine_tune(
    settings: Settings, active: ModelVersion, active_path: Path, data: Path, out: Path, run: TrainingRun, report
) -> Path:
    from mirnet.architectures import ARCHITECTURES, resolve_arguments
    from mirnet.models import upgrade_card
    from mirnet.training import TrainConfig, Trainer

    def on_log_row(row: dict[str, Any]) -> None:
        loss = row.get("loss")
        report(int(row["step"]), None if loss is None or loss != loss else float(loss))

    # A version registered before the network was defined once names it in the old terms.
    network = upgrade_card({"architecture": active.architecture, "arguments": dict(active.arguments)})
    arguments = resolve_arguments(network["architecture"], network["arguments"])
    multiple = ARCHITECTURES[network["architecture"]].size_multiple(arguments)
    crop = min(settings.retrain_crop_size, *_smallest_side(data)) // multiple * multiple
    if crop == 0:
        raise ValueError(f"the training pairs are smaller than {multiple} px, the least this architecture needs")
    config = TrainConfig(
        data=str(data),
        out=str(out),
        arch=network["architecture"],
        arguments=network["arguments"],
        steps=run.steps,
        val_every=max(1, run.steps // PROGRESS_REPORTS),
        checkpoint_every=run.steps,
        batch_size=settings.retrain_batch_size,
        crop_size=crop,
        learning_rate=settings.retrain_learning_rate,
        min_learning_rate=settings.retrain_learning_rate / 10,
        seed=run.id,
        init_from=str(active_path),
        **trained_recipe(active_path),
    )
    messages = lambda message: log.info("training run %s: %s", run.id, message)  # noqa: E731
    result = Trainer(config, log=messages, on_log_row=on_log_row).run()
    return result.best_path


def inherit_inference(active_path: Path, candidate_path: Path) -> None:
    """Give the candidate's card the active model's test-time views and precision (``inference``): the same network
    fine-tuned runs as its parent did, so the holdout compares the two as the platform would run them."""
    inference = json.loads(active_path.with_suffix(".json").read_text()).get("inference")
    card_file = candidate_path.with_suffix(".json")
    card = json.loads(card_file.read_text())
    if inference is None or "inference" in card:
        return
    card["inference"] = inference
    card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


RECIPE_KEYS = ("ssim_weight", "exposure_weight")


def trained_recipe(model_path: Path) -> dict[str, Any]:
    """Fine-tune with the loss the active model was trained with, as its card records (Charbonnier alone where the
    card predates the other terms), and train the layers its last stage trained
    (``train_layers``; all of them where the card names none). The packaged model's last stages trained only its
    refinement, with the body frozen: a fine-tune that moved the body would move each image's brightness, which
    is what did not carry from validation to eval15, and would backpropagate through the body's four views."""
    training = json.loads(model_path.with_suffix(".json").read_text()).get("training", {})
    recipe: dict[str, Any] = {key: float(training.get(key) or 0.0) for key in RECIPE_KEYS}
    recipe["pixel_loss"] = training.get("pixel_loss") or DEFAULT_PIXEL_LOSS
    recipe["train_layers"] = training.get("train_layers")
    return recipe


def _smallest_side(data: Path) -> tuple[int, ...]:
    from PIL import Image

    sides = []
    for path in (data / "low").iterdir():
        with Image.open(path) as image:
            sides.append(min(image.size))
    return tuple(sides) or (0,)


def _holdout_arrays(storage: ObjectStorage, holdout: list[Pair]) -> list[Any]:
    """The holdout pairs decoded whole (``mirnet.data.ImagePair``), named by their ids."""
    from mirnet.data import ImagePair
    from mirnet.imageio import ImageLimits, decode_image

    limits = ImageLimits(2**40, 2**30, 2**40)  # pairs were checked when they arrived
    return [
        ImagePair(
            str(pair.id),
            decode_image(storage.get_bytes(pair.low_key), "holdout low", limits).rgb,
            decode_image(storage.get_bytes(pair.high_key), "holdout high", limits).rgb,
        )
        for pair in holdout
    ]


def _evaluate(settings: Settings, model_path: Path, holdout: list[Any]) -> tuple[float, float]:
    """Mean holdout PSNR/SSIM at 8 bits of the model as the workers serve it (precision, views, refinement views,
    tile and batch from the same settings, through the same function), scored as ``lowlight eval`` scores."""
    from mirnet.evaluation import evaluate_pairs
    from mirnet.models import load_model

    scores = evaluate_pairs(serving_enhancer(load_model(model_path), settings), holdout)
    return scores.psnr, scores.ssim
