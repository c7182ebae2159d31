"""Finding 4: a locked or read-only database is a 503 (quickly), and /readyz says it is not ready."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url

from tests.web.conftest import Images, Recorder, sqlite_settings, upload
from tests.web.security.conftest import Site
from web.app import create_app
from web.core.models import Job


def test_a_locked_sqlite_database_is_503_and_not_ready(make_laptop, images: Images) -> None:  # noqa: ANN001
    site: Site = make_laptop(database_busy_timeout_s=0.3)
    path = make_url(site.app.extensions["lowlight"].settings.database_url).database
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        started = time.monotonic()
        response = upload(site.client, images.low)
        assert time.monotonic() - started < 10
        assert response.status_code == 503 and response.get_json()["error"]["code"] == "database_unavailable"
        assert response.headers["Retry-After"]
        ready = site.client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["database"].startswith("error")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert site.client.get("/readyz").status_code == 200
    with site.sessions()() as session:
        assert session.query(Job).count() == 0


def test_a_read_only_postgres_database_is_503_and_not_ready(lan: Site, images: Images, tmp_path: Path) -> None:
    url = lan.app.extensions["lowlight"].settings.database_url
    read_only = url + ("&" if "?" in url else "?") + "options=" + quote("-c default_transaction_read_only=on")
    settings = sqlite_settings(tmp_path / "ro", database_url=read_only, require_auth=True)
    app = create_app(settings, enqueue=Recorder(), check_broker=lambda: None)
    try:
        assert lan.client.get("/readyz").status_code == 200
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "error: DatabaseReadOnly"
        response = upload(app.test_client(), images.low, headers=lan.auth("alice"))
        assert response.status_code == 503 and response.get_json()["error"]["code"] == "database_unavailable"
    finally:
        app.extensions["session_factory"].kw["bind"].dispose()
