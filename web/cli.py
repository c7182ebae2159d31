"""Administration commands: ``python -m web.cli create-token NAME [--admin]``, ``list-tokens``,
``revoke-token ID`` (also ``flask --app web.app``).

Also ``migrate`` (alembic upgrade head with the configured DATABASE_URL), so a fresh machine needs no
separate Alembic invocation.
"""

from __future__ import annotations

import click
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session, sessionmaker

from web.core.db import make_session_factory, upgrade_database
from web.core.settings import Settings
from web.core.tokens import create_token, list_tokens, revoke_token


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


@click.command("list-tokens")
def list_tokens_command() -> None:
    """List the tokens: id, name, admin or not, created, revoked (never the token itself, which is not kept)."""
    with _session_factory()() as session:
        for token in list_tokens(session):
            revoked = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
            role = "admin" if token.is_admin else "user"
            click.echo(f"{token.id}\t{token.name}\t{role}\tcreated {token.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@click.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token_command(token_id: int) -> None:
    """Revoke a token: it and every portal session signed in with it stop working at once."""
    with _session_factory()() as session:
        try:
            token = revoke_token(session, token_id)
        except KeyError:
            raise click.ClickException(f"there is no token {token_id} (see list-tokens)") from None
    click.echo(f"Revoked token {token.id} ({token.name}); its sessions are ended.", err=True)


@click.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (alembic upgrade head)."""
    upgrade_database(_settings().database_url)
    click.echo("database is at the latest revision", err=True)


COMMANDS = (create_token_command, list_tokens_command, revoke_token_command, migrate_command)


def register_commands(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


@click.group()
def main() -> None:
    """Administration of the low-light platform (reads DATABASE_URL and friends from the environment)."""


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
