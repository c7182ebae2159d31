"""Fixtures for testing the worker's service functions directly: a migrated database, storage, a model."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from tests.fixtures.platform import migrate
from web.core.db import make_engine
from web.core.models import Job
from web.core.settings import Settings
from web.core.storage import LocalStorage, job_key
from worker.context import WorkerContext


def png_bytes(width: int = 48, height: int = 32, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 120, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sqlite_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'jobs.db'}"
    migrate(url)
    engine = make_engine(url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Both databases the platform supports; every test starts with no jobs."""
    factory = request.getfixturevalue(f"{request.param}_sessions")
    yield factory
    with factory() as session:
        session.execute(delete(Job))
        session.commit()


@pytest.fixture
def settings(tiny_model_path: Path, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {},
        model=str(tiny_model_path),
        local_storage_dir=str(tmp_path / "objects"),
        max_batch=4,
        max_batch_delay_ms=0,
        storage_retry_attempts=2,
        storage_retry_backoff_s=0.5,
        storage_retry_backoff_max_s=60.0,
    )


@pytest.fixture(scope="session")
def tiny_enhancer(tiny_model_path: Path):  # -> mirnet.inference.Enhancer (imports TensorFlow)
    from worker.model import load_enhancer

    return load_enhancer(Settings.from_env({}, model=str(tiny_model_path), max_batch=4))


@pytest.fixture
def ctx(settings: Settings, sessions: sessionmaker[Session], tiny_enhancer, tmp_path: Path) -> WorkerContext:
    return WorkerContext(settings, sessions, LocalStorage(tmp_path / "objects"), enhancer_override=tiny_enhancer)


MakeJob = Callable[..., int]


@pytest.fixture
def make_job(ctx: WorkerContext) -> MakeJob:
    """Insert a queued job whose input (and optional reference) are in the context's storage."""

    def factory(image: bytes | None = None, reference: bytes | None = None, **columns: object) -> int:
        image = png_bytes() if image is None else image
        with ctx.sessions() as session:
            job = Job(input_sha256=hashlib.sha256(image).hexdigest(), width=48, height=32)
            session.add(job)
            session.flush()
            job.input_key = job_key(job.id, "input.png")
            for name, value in columns.items():  # after the insert, so an explicit updated_at is kept
                setattr(job, name, value)
            ctx.storage.put_bytes(job.input_key, image)
            if reference is not None:
                job.reference_key = job_key(job.id, "reference.png")
                ctx.storage.put_bytes(job.reference_key, reference)
            session.commit()
            return job.id

    return factory


def load_job(ctx: WorkerContext, job_id: int) -> Job:
    with ctx.sessions() as session:
        return session.get(Job, job_id)
