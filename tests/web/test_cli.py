"""The CLI creates tokens (printed once, stored hashed) and migrates the database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from tests.web.conftest import sqlite_settings
from web.cli import main
from web.core.db import make_session_factory
from web.core.models import ApiToken
from web.core.tokens import authenticate, hash_token


def test_create_token_prints_it_once_and_stores_the_hash(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    env = {"DATABASE_URL": settings.database_url}
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(main, ["create-token", "ci-script", "--admin"], env=env)
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("llt_") and len(plaintext) > 30
    with make_session_factory(settings)() as session:
        token = session.scalars(select(ApiToken)).one()
        assert token.name == "ci-script" and token.is_admin
        assert token.token_hash == hash_token(plaintext) and plaintext not in token.token_hash
        assert authenticate(session, plaintext).id == token.id


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "web.cli", "migrate"], env=env, cwd=root, check=True, capture_output=True
    )
    done = subprocess.run(
        [sys.executable, "-m", "web.cli", "create-token", "me"],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
    )
    assert done.stdout.decode().strip().startswith("llt_")
    assert "shown only once" in done.stderr.decode()
