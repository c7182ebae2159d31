"""Database rows. The job row is the source of truth; broker messages only say "look at job N"."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names so Alembic migrations are identical on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class ApiToken(Base):
    """A bearer token; only its sha256 is stored, the plaintext is shown once when created."""

    __tablename__ = "api_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a revoked token admits no one

    jobs: Mapped[list[Job]] = relationship(back_populates="token", passive_deletes=True)


class PortalSession(Base):
    """A signed-in browser: the cookie holds a random id whose sha256 is this row's key, so logging out or
    revoking the token (rows cascade) ends the session even for a copy of the cookie."""

    __tablename__ = "portal_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """One uploaded image and what became of it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("token_id", "idempotency_key"),
        # NULLs are distinct in unique constraints, so anonymous uploads need their own partial index.
        Index(
            "uq_jobs_anonymous_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("token_id IS NULL"),
            sqlite_where=text("token_id IS NULL"),
        ),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        # Never reuse the id of a deleted job on SQLite: a late broker message or a cached link for the
        # old job must not reach a new one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    original_filename: Mapped[str] = mapped_column(String(255), default="")  # for display only
    input_key: Mapped[str] = mapped_column(String(255), default="")
    input_content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    reference_key: Mapped[str | None] = mapped_column(String(255))
    result_key: Mapped[str | None] = mapped_column(String(255))
    contribute: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 over the image, the reference and `contribute`: a replayed Idempotency-Key must match all three.
    request_sha256: Mapped[str | None] = mapped_column(String(64))
    input_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    psnr: Mapped[float | None] = mapped_column(Float)
    ssim: Mapped[float | None] = mapped_column(Float)
    runtime_ms: Mapped[float | None] = mapped_column(Float)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    model_version: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    token: Mapped[ApiToken | None] = relationship(back_populates="jobs")

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    def object_keys(self) -> list[str]:
        """Every storage key this job owns, so deleting the job can remove them all."""
        return [key for key in (self.input_key, self.reference_key, self.result_key) if key]

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status}>"
