"""The web tier as an attacker meets it: the laptop default (SQLite, local store, no tokens, loopback) and a
LAN instance with tokens on PostgreSQL. Every test here is a probe of issue 47 that failed before the fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.web.conftest import Recorder, bearer, sqlite_settings
from web.app import create_app
from web.core.db import upgrade_database
from web.core.models import Job, JobStatus
from web.core.registry import services as registry
from web.core.settings import Settings
from web.core.tokens import create_token
from web.registry.views import SEND_RETRAIN

EVIL = "https://evil.example"
CARD = {"architecture": "mirnet-lite", "arguments": {"groups": 1, "blocks": 1, "channels": 4}}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Probes on the PostgreSQL site are integration tests, as the project's other PostgreSQL tests are."""
    for item in items:
        if "make_lan" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@dataclass
class Site:
    """An app with its client, the plaintext tokens by name, and what it sent to the queues."""

    app: Flask
    client: FlaskClient
    tokens: dict[str, str]
    enqueued: Recorder
    runs_sent: list[int]

    def auth(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])

    def sessions(self):  # noqa: ANN201 - a sessionmaker
        return self.app.extensions["session_factory"]

    def finish(self, job_id: int, result: bytes = b"\x89PNG result") -> None:
        """Mark a job succeeded with a stored result, as a worker would."""
        storage = self.app.extensions["lowlight"].storage
        with self.sessions()() as session:
            job = session.get(Job, job_id)
            job.status, job.result_key = JobStatus.SUCCEEDED.value, f"jobs/{job_id}/result.png"
            storage.put_bytes(job.result_key, result, "image/png")
            session.commit()

    def versions(self) -> list[str]:
        """An active v1 and a candidate v2 to promote."""
        storage = self.app.extensions["lowlight"].storage
        with self.sessions()() as session:
            first = registry.register_version(session, storage, b"w1", CARD, state="active", scores=(14.0, 0.6, 1))
            second = registry.register_version(session, storage, b"w2", CARD, parent=first, scores=(14.1, 0.6, 1))
            return [first.version, second.version]


def build_site(settings: Settings) -> Site:
    enqueued: Recorder = Recorder()
    app = create_app(settings, enqueue=enqueued, check_broker=lambda: None)
    runs: list[int] = []
    app.extensions[SEND_RETRAIN] = runs.append
    with app.extensions["session_factory"]() as session:
        tokens = {name: create_token(session, name, is_admin=name == "admin")[1] for name in ("alice", "bob", "admin")}
    return Site(app, app.test_client(), tokens, enqueued, runs)


def _dispose(site: Site) -> None:
    site.app.extensions["session_factory"].kw["bind"].dispose()


@pytest.fixture
def make_laptop(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """The embedded default as ``make run`` starts it (loopback, no tokens), with settings overridden."""
    sites: list[Site] = []

    def make(**overrides: object) -> Site:
        settings = sqlite_settings(tmp_path / f"site{len(sites)}", **overrides)
        upgrade_database(settings.database_url)
        sites.append(build_site(settings))
        return sites[-1]

    yield make
    for site in sites:
        _dispose(site)


@pytest.fixture
def laptop(make_laptop: Callable[..., Site]) -> Site:
    return make_laptop()


@pytest.fixture
def make_lan(pg_migrated: str, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Tokens required, on PostgreSQL; the tables are emptied after the test."""
    sites: list[Site] = []

    def make(**overrides: object) -> Site:
        values: dict[str, object] = {"database_url": pg_migrated, "require_auth": True, **overrides}
        sites.append(build_site(sqlite_settings(tmp_path / f"lan{len(sites)}", **values)))
        return sites[-1]

    yield make
    for site in sites:
        with site.sessions()() as session:
            session.execute(text("TRUNCATE api_tokens, jobs, pairs, model_versions, training_runs CASCADE"))
            session.commit()
        _dispose(site)


@pytest.fixture
def lan(make_lan: Callable[..., Site]) -> Site:
    return make_lan()
