"""Administration commands: ``python -m web.cli create-token NAME [--admin]`` (also ``flask --app web.app``).

Also ``migrate`` (alembic upgrade head with the configured DATABASE_URL), so a fresh machine needs no
separate Alembic invocation.
"""

from __future__ import annotations

import click
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session, sessionmaker

from web.core.db import make_session_factory, upgrade_database
from web.core.settings import Settings
from web.core.tokens import create_token


def _settings() -> Settings:
    if has_app_context():
        return current_app.extensions["lowlight"].settings
    return Settings.from_env()


def _session_factory() -> sessionmaker[Session]:
    if has_app_context():
        return current_app.extensions["session_factory"]
    return make_session_factory(_settings())


@click.command("create-token")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The token sees every job, not only its own.")
def create_token_command(name: str, admin: bool) -> None:
    """Create an API token and print it once; only its hash is stored."""
    with _session_factory()() as session:
        token, plaintext = create_token(session, name, is_admin=admin)
    click.echo(
        f"Created token {token.id} ({token.name}{', admin' if admin else ''}). It is shown only once:",
        err=True,
    )
    click.echo(plaintext)


@click.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (alembic upgrade head)."""
    upgrade_database(_settings().database_url)
    click.echo("database is at the latest revision", err=True)


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_token_command)
    app.cli.add_command(migrate_command)


@click.group()
def main() -> None:
    """Administration of the low-light platform (reads DATABASE_URL and friends from the environment)."""


main.add_command(create_token_command)
main.add_command(migrate_command)

if __name__ == "__main__":
    main()
