"""Engine and sessions built from settings, shared by the web app and the worker (the web app's one session per
request is ``web.request_session``).

SQLite is the embedded default and is used by several processes at once (web, worker, scheduler), so every
connection turns on WAL (readers do not block the writer) and a busy timeout (writers wait instead of
failing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from web.core.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_url: str, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> Engine:
    """Create an engine; for a SQLite file, create its folder and set the pragmas on every connection."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
    event.listen(engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, int(busy_timeout_s * 1000)))
    return engine


def make_session_factory(settings: Settings) -> sessionmaker[Session]:
    # expire_on_commit=False: views serialize a job right after committing it.
    return sessionmaker(make_engine(settings.database_url, settings.database_busy_timeout_s), expire_on_commit=False)


def _alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Run the Alembic migrations (``alembic upgrade head``) against ``database_url``."""
    from alembic import command

    command.upgrade(_alembic_config(database_url), revision)


class SchemaNotCurrent(RuntimeError):
    """The database has no schema, or an older one than this code's migrations end at."""


def require_current_schema(database_url: str) -> None:
    """Raise :class:`SchemaNotCurrent`, saying how to migrate, unless the database is at the migrations' head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(database_url)).get_heads())
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    if current != heads:
        found = f"is at revision {', '.join(sorted(current))}" if current else "has no schema yet"
        raise SchemaNotCurrent(
            f"the database {make_url(database_url).render_as_string(hide_password=True)} {found}, this code needs "
            f"{', '.join(sorted(heads))}: run `python -m web.cli migrate` (`make run` migrates too)"
        )
