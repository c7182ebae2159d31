"""Alembic environment: the URL comes from DATABASE_URL through web.core.settings.Settings.

Tests (and scripts) can pass a URL explicitly with ``config.attributes["database_url"]``.
"""

from alembic import context

from web.core.db import make_engine
from web.core.schema import metadata
from web.core.settings import Settings

config = context.config
target_metadata = metadata


def _database_url() -> str:
    return config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    with engine.connect() as connection:
        # Batch mode lets later ALTERs work on SQLite, which cannot alter most things in place.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
