"""The application factory: ``create_app(settings, storage=..., enqueue=...)``.

Everything the app talks to is built here from one Settings object, or injected (tests pass a recording
``enqueue`` and a storage of their choosing). Nothing here imports TensorFlow or worker/.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from web import limits, request_session, security
from web.api import bp as api_bp
from web.cli import register_commands
from web.core.queue import CeleryEnqueuer
from web.core.settings import Settings
from web.core.storage import ObjectStorage, build_storage
from web.health import bp as health_bp
from web.http_errors import register_error_handlers
from web.metrics import make_registry
from web.platform import EXTENSION, Platform
from web.portal import bp as portal_bp
from web.registry import views as registry_views

# Room for the image, the reference and the multipart overhead; each file is also checked on its own.
MULTIPART_OVERHEAD = 2**20


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.secret_key_file)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: if two processes start at once, one creates the file and the other reads it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def create_app(
    settings: Settings | None = None,
    *,
    storage: ObjectStorage | None = None,
    enqueue: Callable[[int], None] | None = None,
    check_broker: Callable[[], None] | None = None,
) -> Flask:
    """Build the web app. ``enqueue(job_id)`` defaults to sending ``worker.enhance_job`` through Celery."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        MAX_CONTENT_LENGTH=2 * settings.max_upload_bytes + MULTIPART_OVERHEAD,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    request_session.init_app(app, settings)
    enqueuer = CeleryEnqueuer(settings)
    app.extensions[EXTENSION] = Platform(
        settings=settings,
        storage=storage if storage is not None else build_storage(settings),
        enqueue=enqueue if enqueue is not None else enqueuer,
        check_broker=check_broker if check_broker is not None else enqueuer.check,
    )
    app.extensions["metrics_registry"] = make_registry(app.extensions["session_factory"])
    register_error_handlers(app)
    security.init_app(app, settings)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(portal_bp)
    registry_views.init_app(app)
    limits.init_app(app, settings)
    register_commands(app)
    return app
