"""Rate limits per client address, with Flask-Limiter: uploads, sign-ins, training triggers, and bad tokens.

A wrong token counts against an application-wide limit (only 401 answers are deducted), so guessing tokens
locks the guesser out of every route for the window while honest clients never notice. Limits come from the
settings (``RATE_LIMIT_*``); ``RATE_LIMIT_STORAGE_URI`` shares the counts between processes (redis://...).
"""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from web.core.settings import Settings

EXTENSION = "lowlight_limiter"


def _route_limits(settings: Settings) -> list[tuple[str, str, list[str] | None]]:
    """(endpoint, limit, methods) for the routes that cost the most or guard a secret."""
    return [
        ("api.create_job", settings.rate_limit_uploads, None),
        ("portal.login", settings.rate_limit_logins, ["POST"]),
        ("registry_api.start_training_run", settings.rate_limit_training, None),
    ]


def _unauthorized(response: Response) -> bool:
    return response.status_code == 401


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Attach the limiter; call after the blueprints are registered (it wraps their view functions)."""
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        application_limits=[settings.rate_limit_bad_tokens],
        application_limits_deduct_when=_unauthorized,
        headers_enabled=True,
        # A shared store (redis) that is down must not take the API with it: count in memory meanwhile.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    for endpoint, limit, methods in _route_limits(settings):
        app.view_functions[endpoint] = limiter.limit(limit, methods=methods)(app.view_functions[endpoint])
    app.extensions[EXTENSION] = limiter
    return limiter
