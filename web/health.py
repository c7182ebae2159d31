"""Probes and metrics: /healthz (the process is up), /readyz (it can do work), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from web.core.queue import QueueUnavailable
from web.core.storage import StorageUnavailable
from web.platform import platform
from web.request_session import get_session

bp = Blueprint("health", __name__)
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness only: no dependency is touched. Says whether tokens are required, as the issue asks."""
    settings = platform().settings
    body = {"status": "ok", "auth_required": settings.auth_required}
    if not settings.auth_required:
        body["warning"] = "authentication is off: anyone who can reach this address can upload"
    return jsonify(body)


def _database() -> None:
    get_session().execute(text("SELECT 1"))


def _run(check: Callable[[], None]) -> str:
    try:
        check()
    except (SQLAlchemyError, StorageUnavailable, QueueUnavailable) as exc:
        return f"error: {str(exc).splitlines()[0][:200]}"
    return "ok"


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database, the broker and the object storage all answer; 503 and which one otherwise."""
    wired = platform()
    checks = {
        "database": _run(_database),
        "broker": _run(wired.check_broker),
        "storage": _run(wired.storage.check),
    }
    ready = all(result == "ok" for result in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """The API description (web/openapi.yaml), tested against the app's routes and real responses."""
    return Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")


@bp.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions["metrics_registry"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
