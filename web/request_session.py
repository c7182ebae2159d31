"""One database session per request: created on first use, closed when the request's app context ends.

The session factory itself comes from the core (``web.core.db``), which knows nothing of Flask; this module is
the only place the HTTP layer ties it to Flask's request context.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from web.core.db import make_session_factory
from web.core.settings import Settings


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app a session factory; one session per request, closed at teardown."""
    app.extensions["session_factory"] = make_session_factory(settings)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_session() -> Session:
    """The current request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["session_factory"]()
    return g.db_session
