"""The schema comes from Alembic, and the models agree with it on PostgreSQL and on SQLite."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from web.core.db import make_engine, upgrade_database
from web.core.schema import metadata


def _diffs(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade_database(url)
    assert _diffs(url) == []
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"jobs", "api_tokens", "alembic_version"} <= tables


@pytest.mark.integration
def test_postgres_migrations_match_the_models(pg_migrated: str) -> None:
    assert _diffs(pg_migrated) == []
    engine = create_engine(pg_migrated)
    indexes = {index["name"] for index in inspect(engine).get_indexes("jobs")}
    engine.dispose()
    assert "ix_jobs_status_created_at" in indexes
    assert "uq_jobs_anonymous_idempotency_key" in indexes


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade_database(url)
    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.attributes["database_url"] = url
    command.downgrade(config, "base")
    assert "jobs" not in inspect(create_engine(url)).get_table_names()
    upgrade_database(url)
    assert _diffs(url) == []


def test_alembic_command_line_reads_database_url(tmp_path: Path) -> None:
    """``alembic upgrade head`` from the repository root, configured only by DATABASE_URL."""
    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": url}
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, cwd=root, env=env, check=True, capture_output=True)
    assert _diffs(url) == []
