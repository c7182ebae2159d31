"""Fixtures for the web tests: settings, an app with a recording ``enqueue``, a client, databases, images.

Fast tests use SQLite and a local folder in tmp_path; tests marked ``integration`` run the same code against
PostgreSQL and SeaweedFS. Schemas are always built with ``alembic upgrade head``, as in production.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from web.app import create_app
from web.core.db import make_session_factory, upgrade_database
from web.core.models import ApiToken
from web.core.settings import Settings
from web.core.tokens import create_token

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "lol" / "sample"


@dataclass(frozen=True)
class Images:
    low: bytes
    high: bytes
    other_low: bytes

    @staticmethod
    def png(width: int, height: int, color: tuple[int, int, int] = (20, 20, 30)) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), color).save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def bomb(width: int = 30_000, height: int = 30_000) -> bytes:
        """A tiny PNG whose header claims ``width`` x ``height``: rejected before any pixel is decoded."""

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        pixels = zlib.compress(b"\x00" * 64)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def images() -> Images:
    """Real LOL pairs: a dark image, its well-lit reference, and another dark image."""
    return Images(
        low=(SAMPLES / "low" / "2.png").read_bytes(),
        high=(SAMPLES / "high" / "2.png").read_bytes(),
        other_low=(SAMPLES / "low" / "5.png").read_bytes(),
    )


class Recorder(list):
    """Stands in for ``enqueue``: records job ids (the real worker is exercised in tests/worker)."""

    def __call__(self, job_id: int) -> None:
        self.append(job_id)


@pytest.fixture
def enqueued() -> Recorder:
    return Recorder()


def sqlite_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'lowlight.db'}",
        "broker_url": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        "local_storage_dir": str(tmp_path / "objects"),
        "secret_key": "test-secret",
        "max_upload_bytes": 2 * 2**20,
        "max_pixels": 4_000_000,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite + local storage, auth off (bound to 127.0.0.1); schema built by Alembic."""
    result = sqlite_settings(tmp_path)
    upgrade_database(result.database_url)
    return result


def _dispose(app: Flask) -> None:
    app.extensions["session_factory"].kw["bind"].dispose()


@pytest.fixture
def app(settings: Settings, enqueued: Recorder) -> Iterator[Flask]:
    created = create_app(settings, enqueue=enqueued, check_broker=lambda: None)
    yield created
    _dispose(created)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    """A session on the app's database, for arranging rows and checking what the app wrote."""
    with app.extensions["session_factory"]() as session:
        yield session


@pytest.fixture
def auth_settings(tmp_path: Path) -> Settings:
    result = sqlite_settings(tmp_path, require_auth=True)
    upgrade_database(result.database_url)
    return result


@pytest.fixture
def auth_app(auth_settings: Settings, enqueued: Recorder) -> Iterator[Flask]:
    created = create_app(auth_settings, enqueue=enqueued, check_broker=lambda: None)
    yield created
    _dispose(created)


@pytest.fixture
def tokens(auth_app: Flask) -> dict[str, tuple[ApiToken, str]]:
    """Two ordinary tokens and an admin token: name -> (row, plaintext)."""
    with auth_app.extensions["session_factory"]() as session:
        return {
            name: create_token(session, name, is_admin=name == "admin") for name in ("alice", "bob", "admin")
        }


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


def upload(
    client: FlaskClient,
    image: bytes,
    *,
    reference: bytes | None = None,
    filename: str = "dark.png",
    content_type: str = "image/png",
    headers: dict[str, str] | None = None,
    **form: str,
):
    """POST /api/v1/jobs the way curl -F does."""
    data: dict[str, object] = {"image": (io.BytesIO(image), filename, content_type), **form}
    if reference is not None:
        data["reference"] = (io.BytesIO(reference), "reference.png", "image/png")
    return client.post("/api/v1/jobs", data=data, headers=headers or {}, content_type="multipart/form-data")


@pytest.fixture(scope="session")
def pg_migrated(postgres_url: str) -> str:
    """The session's PostgreSQL database with the schema built by ``alembic upgrade head``."""
    upgrade_database(postgres_url)
    return postgres_url


@pytest.fixture
def pg_sessions(pg_migrated: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on PostgreSQL; the tables are emptied after each test."""
    factory = make_session_factory(Settings.from_env({}, database_url=pg_migrated))
    yield factory
    with factory() as session:
        session.execute(text("TRUNCATE jobs, api_tokens RESTART IDENTITY CASCADE"))
        session.commit()
    factory.kw["bind"].dispose()
