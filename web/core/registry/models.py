"""Rows of the retraining domain: pairs, model versions, training runs and the retraining lock."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from web.core.models import Base, utcnow


class VersionState(enum.StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED)


class Pair(Base):
    """A dark image and its reference, as objects of their own (deleting the job keeps the pair)."""

    __tablename__ = "pairs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of the two images' sha256s: the same pair contributed twice is one row.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    low_key: Mapped[str] = mapped_column(String(255))
    high_key: Mapped[str] = mapped_column(String(255))
    low_sha256: Mapped[str] = mapped_column(String(64))
    high_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # "job" or "import"
    source: Mapped[str] = mapped_column(String(255), default="")  # file name or "job N", for display
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    is_holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    # "operator" (imported with --holdout) or "hash" (set aside automatically until the operator registers one)
    holdout_reason: Mapped[str | None] = mapped_column(String(16))
    # The training run that first trained on it; NULL means new (not yet used).
    first_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    """One set of weights in the registry: a ``.keras`` object (and its card) at a key of its own."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one active version, whatever two operators or a gate do at the same moment.
        Index(
            "uq_model_versions_one_active",
            "state",
            unique=True,
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    architecture: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    training_run_id: Mapped[int | None] = mapped_column(Integer)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # which pairs, where it came from
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    holdout_psnr: Mapped[float | None] = mapped_column(Float)
    holdout_ssim: Mapped[float | None] = mapped_column(Float)
    holdout_pairs: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=VersionState.CANDIDATE.value)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was kept as a candidate, promoted, rolled back
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def card_key(self) -> str:
        return self.storage_key.removesuffix(".keras") + ".json"


class TrainingRun(Base):
    """One retraining: what started it, its progress, both holdout scores, and the gate's decision."""

    __tablename__ = "training_runs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value, index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, pairs, cli, api
    steps: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float)
    eta_s: Mapped[float | None] = mapped_column(Float)
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    candidate_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    new_pairs: Mapped[int | None] = mapped_column(Integer)
    replay_pairs: Mapped[int | None] = mapped_column(Integer)
    holdout_pairs: Mapped[int | None] = mapped_column(Integer)
    active_psnr: Mapped[float | None] = mapped_column(Float)
    active_ssim: Mapped[float | None] = mapped_column(Float)
    candidate_psnr: Mapped[float | None] = mapped_column(Float)
    candidate_ssim: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(16))  # promoted, kept
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def run_status(self) -> RunStatus:
        return RunStatus(self.status)


class TrainingLock(Base):
    """A named lock with an expiry: a crashed holder stops holding it when ``expires_at`` passes."""

    __tablename__ = "training_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
