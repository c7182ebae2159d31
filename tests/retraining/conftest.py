"""Fixtures for retraining: a migrated database (SQLite, or PostgreSQL for the lock), local storage, settings
for a tiny fine-tune, and the LOL sample pairs found beside the checkout."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fixtures.platform import migrate, write_tiny_model
from tests.fixtures.services import postgres_database
from web.core.db import make_engine
from web.core.registry import services as registry
from web.core.settings import Settings
from web.core.storage import LocalStorage
from worker.context import WorkerContext

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "lol" / "sample"
TINY = {"groups": 1, "blocks": 1, "channels": 4}


def lol_folder(root: Path, names: list[str], swap: bool = False) -> Path:
    """A low/ + high/ folder with some of the LOL sample pairs; ``swap`` exchanges the two sides (a pair that
    teaches the inverse task: darkening)."""
    for side in ("low", "high"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for name in names:
        low, high = SAMPLES / "low" / name, SAMPLES / "high" / name
        shutil.copy(high if swap else low, root / "low" / name)
        shutil.copy(low if swap else high, root / "high" / name)
    return root


def tiny_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "broker_url": "memory://",
        "local_storage_dir": str(tmp_path / "objects"),
        "retrain_steps": 30,
        "retrain_batch_size": 4,
        "retrain_crop_size": 32,
        "retrain_learning_rate": 2e-3,
        "retrain_replay_fraction": 0.0,
        "retrain_min_new_pairs": 2,
        "holdout_share": 10,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lowlight.db'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    with postgres_database("platform") as url:
        migrate(url)
        yield url


def _context(settings: Settings) -> Iterator[WorkerContext]:
    engine = make_engine(settings.database_url)
    yield WorkerContext(
        settings, sessionmaker(engine, expire_on_commit=False), LocalStorage(settings.local_storage_dir)
    )
    engine.dispose()


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str) -> Iterator[WorkerContext]:
    """A worker context on SQLite with settings for a tiny retraining."""
    yield from _context(tiny_settings(tmp_path, sqlite_url))


@pytest.fixture
def any_ctx(tmp_path: Path, any_database_url: str) -> Iterator[WorkerContext]:
    yield from _context(tiny_settings(tmp_path, any_database_url))


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained mirnet-lite with 4 channels: it barely changes the dark input."""
    return write_tiny_model(tmp_path_factory.mktemp("retrain-model") / "tiny4.keras", **TINY)


@pytest.fixture
def sessions(ctx: WorkerContext) -> sessionmaker[Session]:
    return ctx.sessions


@pytest.fixture
def registered(ctx: WorkerContext, tiny_model_file: Path) -> str:
    """The tiny model registered as the first, active version; returns its name."""
    with ctx.sessions() as session:
        row = registry.register_initial(session, ctx.storage, tiny_model_file)
        assert row is not None
        return row.version
