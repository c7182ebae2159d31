"""The model registry and training runs: register versions, the promotion gate, promote and roll back.

Every version is a row and two objects (``models/<version>/model.keras`` and its card ``model.json``). Exactly
one version is ``active`` once any exists; workers load the active one between batches. Switching is one
transaction (retire the old, activate the new), so a reader sees either version, never none.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.core.errors import DomainError
from web.core.models import utcnow
from web.core.registry.models import ModelVersion, RunStatus, TrainingRun, VersionState
from web.core.settings import Settings
from web.core.storage import ObjectStorage

ACTIVE, CANDIDATE, RETIRED = VersionState.ACTIVE.value, VersionState.CANDIDATE.value, VersionState.RETIRED.value


class VersionNotFound(DomainError):
    code = "not_found"


class InvalidVersionState(DomainError):
    code = "invalid_state"


class RunNotFound(DomainError):
    code = "not_found"


# Versions ------------------------------------------------------------------------------------------------------
def model_key(version: str) -> str:
    return f"models/{version}/model.keras"


def active_version(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.state == ACTIVE)).first()


def active_version_name(session: Session) -> str | None:
    """What workers check between batches: one indexed lookup."""
    name = session.scalar(select(ModelVersion.version).where(ModelVersion.state == ACTIVE))
    session.commit()
    return name


def get_version(session: Session, version: str) -> ModelVersion:
    row = session.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()
    if row is None:
        raise VersionNotFound(f"model version {version!r} not found")
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def _next_name(session: Session) -> str:
    last = session.scalar(select(ModelVersion.id).order_by(ModelVersion.id.desc()).limit(1)) or 0
    return f"v{last + 1}"


def register_version(
    session: Session,
    storage: ObjectStorage,
    weights: bytes,
    card: dict[str, Any],
    *,
    state: str = CANDIDATE,
    parent: ModelVersion | None = None,
    run_id: int | None = None,
    lineage: dict[str, Any] | None = None,
    scores: tuple[float, float, int] | None = None,
    reason: str | None = None,
    name: str | None = None,
    sha256: str | None = None,
) -> ModelVersion:
    """Store the weights and card under a new version name (``v<N>`` unless given), then record the row
    (objects first: a row never points at nothing). ``sha256`` spares hashing weights the caller has hashed."""
    name = name or _next_name(session)
    card = {**card, "version": name}
    key = model_key(name)
    storage.put_bytes(key, weights, "application/octet-stream")
    storage.put_bytes(key.removesuffix(".keras") + ".json", json.dumps(card, indent=2).encode(), "application/json")
    row = ModelVersion(
        version=name,
        architecture=card["architecture"],
        arguments=dict(card.get("arguments", {})),
        parent_id=parent.id if parent else None,
        training_run_id=run_id,
        lineage=lineage or {},
        storage_key=key,
        sha256=sha256 or hashlib.sha256(weights).hexdigest(),
        state=state,
        reason=reason,
        activated_at=utcnow() if state == ACTIVE else None,
    )
    if scores is not None:
        row.holdout_psnr, row.holdout_ssim, row.holdout_pairs = scores
    session.add(row)
    session.commit()
    return row


def _read_model_file(path: Path) -> tuple[bytes, dict[str, Any], str]:
    """A model file's weights, its card (the ``.json`` beside it) and the name it goes by: the card's version,
    else the file's stem and hash (what jobs recorded before the registry existed)."""
    card = json.loads(path.with_suffix(".json").read_text())
    weights = path.read_bytes()
    return weights, card, card.get("version") or f"{path.stem}-{hashlib.sha256(weights).hexdigest()[:12]}"


def register_initial(session: Session, storage: ObjectStorage, model_path: str | Path) -> ModelVersion | None:
    """Register the configured model (the packaged default unless MODEL says otherwise) as the first, active
    version when the registry is empty. Idempotent; safe when several processes start at once."""
    if session.scalar(select(ModelVersion.id).limit(1)) is not None:
        session.commit()
        return None
    path = Path(model_path)
    weights, card, name = _read_model_file(path)
    lineage = {"source": "packaged" if path.parent.name == "weights" else "configured", "file": path.name}
    try:
        return register_version(
            session, storage, weights, card, state=ACTIVE, lineage=lineage, reason="the first version", name=name
        )
    except IntegrityError:  # another process registered it first
        session.rollback()
        return None


def register_file(session: Session, storage: ObjectStorage, model_path: str | Path) -> ModelVersion:
    """Register a model file and its card as a candidate, for an operator to promote: how a deployment whose
    registry already exists takes a newer packaged model (or one trained elsewhere). Into a registry with no
    active version it goes as the active one, since workers would otherwise have nothing to load."""
    path = Path(model_path)
    weights, card, name = _read_model_file(path)
    digest = hashlib.sha256(weights).hexdigest()
    same_weights = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == digest)).first()
    if same_weights is not None:
        raise InvalidVersionState(f"{same_weights.version} is already registered with these weights")
    if session.scalar(select(ModelVersion.id).where(ModelVersion.version == name)) is not None:
        raise InvalidVersionState(f"another model is already registered as {name}")
    lineage = {"source": "file", "file": path.name}
    state = CANDIDATE if active_version(session) is not None else ACTIVE
    reason = f"registered from {path.name}" + ("" if state == CANDIDATE else " as the first version")
    try:
        return register_version(
            session, storage, weights, card, state=state, lineage=lineage, reason=reason, name=name, sha256=digest
        )
    except IntegrityError as exc:  # the same name registered concurrently
        session.rollback()
        raise InvalidVersionState(f"{name} is already registered") from exc


def _activate(session: Session, row: ModelVersion, reason: str) -> ModelVersion:
    """Retire the active version and activate ``row`` in one transaction.

    The active row is locked first (FOR UPDATE; SQLite serialises writers anyway), so a concurrent switch waits
    for this one and then retires whatever this one made active: the later switch wins, and the one-active
    index is never violated."""
    now = utcnow()
    session.execute(select(ModelVersion.id).where(ModelVersion.state == ACTIVE).with_for_update())
    session.execute(
        update(ModelVersion).where(ModelVersion.state == ACTIVE, ModelVersion.id != row.id).values(state=RETIRED),
        execution_options={"synchronize_session": False},
    )
    row.state, row.activated_at, row.reason = ACTIVE, now, reason
    session.commit()
    session.refresh(row)
    return row


def promote(session: Session, version: str, reason: str = "promoted by an operator") -> ModelVersion:
    """Make a candidate the active version (the gate, or an operator overriding it)."""
    row = get_version(session, version)
    if row.state != CANDIDATE:
        raise InvalidVersionState(f"{version} is {row.state}; only a candidate can be promoted")
    return _activate(session, row, reason)


def rollback(session: Session, version: str) -> ModelVersion:
    """Make an earlier (retired) version active again; the current one is retired."""
    row = get_version(session, version)
    if row.state != RETIRED:
        raise InvalidVersionState(f"{version} is {row.state}; roll back to a retired (earlier active) version")
    current = active_version(session)
    return _activate(session, row, f"rolled back from {current.version if current else 'none'}")


# The gate ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def gate(settings: Settings, active: tuple[float, float], candidate: tuple[float, float]) -> Decision:
    """Promote only a candidate whose holdout PSNR gains at least PROMOTE_MIN_GAIN_DB and whose SSIM drops by
    no more than PROMOTE_MAX_SSIM_DROP."""
    gain, drop = candidate[0] - active[0], active[1] - candidate[1]
    scores = f"PSNR {candidate[0]:.3f} vs {active[0]:.3f} dB ({gain:+.3f}), SSIM {candidate[1]:.4f} vs {active[1]:.4f}"
    if gain < settings.promote_min_gain_db:
        return Decision(False, f"{scores}: PSNR gain below {settings.promote_min_gain_db} dB")
    if drop > settings.promote_max_ssim_drop:
        return Decision(False, f"{scores}: SSIM drops by more than {settings.promote_max_ssim_drop}")
    return Decision(True, f"{scores}: passes the gate")


# Training runs -------------------------------------------------------------------------------------------------
IN_PROGRESS = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def get_run(session: Session, run_id: int) -> TrainingRun:
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise RunNotFound(f"training run {run_id} not found")
    return run


def list_runs(session: Session, limit: int = 20) -> list[TrainingRun]:
    return list(session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)))


def current_run(session: Session, stale_after_s: float | None = None) -> TrainingRun | None:
    """The queued or running run; with ``stale_after_s``, one untouched that long does not count (its message
    or its trainer was lost; the next run that takes the lock marks it failed)."""
    query = select(TrainingRun).where(TrainingRun.status.in_(IN_PROGRESS)).order_by(TrainingRun.id)
    if stale_after_s is not None:
        query = query.where(TrainingRun.updated_at >= utcnow() - timedelta(seconds=stale_after_s))
    return session.scalars(query).first()


def create_run(session: Session, settings: Settings, trigger: str, steps: int | None = None) -> TrainingRun:
    run = TrainingRun(trigger=trigger, steps=steps or settings.retrain_steps, status=RunStatus.QUEUED.value)
    session.add(run)
    session.commit()
    return run


def finish_run(session: Session, run: TrainingRun, status: RunStatus, reason: str, **values: object) -> TrainingRun:
    run.status, run.reason, run.completed_at, run.eta_s = status.value, reason, utcnow(), None
    for name, value in values.items():
        setattr(run, name, value)
    session.commit()
    return run
