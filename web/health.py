"""Probes and metrics: /healthz (the process is up), /readyz (it can do work), /metrics (Prometheus)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from web.core.queue import QueueUnavailable
from web.core.storage import StorageUnavailable
from web.platform import current_token, platform
from web.request_session import get_session

bp = Blueprint("health", __name__)
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
READY_LOCK_WAIT_MS = 1000


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness only: no dependency is touched. Says whether tokens are required, as the issue asks."""
    settings = platform().settings
    body = {"status": "ok", "auth_required": settings.auth_required}
    if not settings.auth_required:
        body["warning"] = "authentication is off: anyone who can reach this address can upload"
    return jsonify(body)


class DatabaseReadOnly(RuntimeError):
    """The database answers reads but refuses writes."""


def _database() -> None:
    """Ready means writable: a locked or read-only database serves reads and then fails every upload."""
    session = get_session()
    session.execute(text("SELECT 1"))
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        _sqlite_takes_the_write_lock(engine)
    elif session.execute(text("SHOW transaction_read_only")).scalar() == "on":
        raise DatabaseReadOnly("the database is read-only")


def _sqlite_takes_the_write_lock(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"PRAGMA busy_timeout={READY_LOCK_WAIT_MS}")
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")
    finally:
        raw.invalidate()  # its busy timeout was changed for the probe; the pool opens a fresh one


def _run(name: str, check: Callable[[], None]) -> str:
    """``ok`` or ``error: <kind>``; the details (paths, hosts) go to the log, not to anonymous callers."""
    try:
        check()
    except (SQLAlchemyError, sqlite3.Error, DatabaseReadOnly, StorageUnavailable, QueueUnavailable) as exc:
        current_app.logger.warning("readiness: %s: %s", name, str(exc).splitlines()[0][:300])
        return f"error: {type(exc).__name__}"
    return "ok"


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database, the broker and the object storage all answer; 503 and which one otherwise."""
    wired = platform()
    checks = {
        "database": _run("database", _database),
        "broker": _run("broker", wired.check_broker),
        "storage": _run("storage", wired.storage.check),
    }
    ready = all(result == "ok" for result in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """The API description (web/openapi.yaml), tested against the app's routes and real responses."""
    return Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text; with authentication on, the scraper sends a token (``authorization`` in its config)."""
    if platform().settings.auth_required:
        current_token()
    registry = current_app.extensions["metrics_registry"]
    # content_type, not mimetype: CONTENT_TYPE_LATEST already names its charset.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
