"""The web tier's doors, in one place: which Host names it answers, which requests may change state, who is
an admin, where a login may send the browser, and the headers every response carries.

The laptop default has no tokens, so a page the user visits in the same browser must not be able to act for
them: unsafe methods from a foreign Origin (or ``Sec-Fetch-Site: cross-site``) are refused, the Host header
must name the bind address (DNS rebinding sees a 400), and admin actions always need an admin token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound

from web.core.errors import Forbidden
from web.core.models import ApiToken
from web.core.settings import Settings
from web.platform import current_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
MAX_ID = 2**31 - 1  # ids are INTEGER columns (32 bits on PostgreSQL): a larger one is no row's
# User files are served from the app's origin: a sandbox keeps an image that is also HTML from running.
USER_CONTENT_ENDPOINTS = frozenset({"portal.job_file", "api.get_result"})
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
USER_CONTENT_POLICY = "default-src 'none'; img-src 'self'; sandbox; frame-ancestors 'none'"


def allowed_hosts(settings: Settings) -> list[str] | None:
    """Host names the app answers; None admits any (bound to every interface with no ALLOWED_HOSTS)."""
    if settings.allowed_hosts.strip():
        return [name.strip().lower() for name in settings.allowed_hosts.split(",") if name.strip()]
    if settings.on_loopback:
        return list(LOOPBACK_NAMES)
    if settings.host in WILDCARD_BINDS:
        return None
    return [f"[{settings.host}]" if ":" in settings.host else settings.host]


def refuse_ids_past_the_columns(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """An id in the path past what an INTEGER column holds is no row's: 404, not an OverflowError or a
    DataError. (A converter with ``max`` would answer 405 for the other methods of the same rule.)"""
    if values and any(isinstance(value, int) and value > MAX_ID for value in values.values()):
        raise NotFound("no such resource")


def same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def check_request_origin() -> None:
    """Refuse a state-changing request a browser sent on behalf of another site (CSRF, login CSRF)."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        if not same_origin(origin, request.host):
            raise Forbidden(f"requests from {origin[:100]!r} may not change anything here", "cross_origin")
    elif request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
        raise Forbidden("requests from other sites may not change anything here", "cross_origin")


def require_admin() -> ApiToken:
    """The caller's admin token. Even with authentication off, admin actions need the operator's token
    (``python -m web.cli create-token NAME --admin``): the anonymous laptop user is not an admin."""
    token = current_token()
    if token is None or not token.is_admin:
        raise Forbidden("this needs an admin token (python -m web.cli create-token NAME --admin)")
    return token


def safe_next(target: str | None) -> str:
    """A same-site path to return to after login, else ``/``. Browsers drop tabs and newlines and read a
    backslash as a slash, so ``/\\t/evil.example`` would leave the site: any of those refuses the target."""
    if not target or any(ch in target for ch in "\\\t\r\n") or any(ord(ch) < 0x20 for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    policy = USER_CONTENT_POLICY if request.endpoint in USER_CONTENT_ENDPOINTS else PAGE_POLICY
    headers.setdefault("Content-Security-Policy", policy)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Install the checks (before the blueprints, so the origin check runs before theirs)."""
    app.url_value_preprocessor(refuse_ids_past_the_columns)
    app.config["TRUSTED_HOSTS"] = allowed_hosts(settings)
    secure = settings.session_cookie_secure
    app.config["SESSION_COOKIE_SECURE"] = (not settings.on_loopback) if secure is None else secure
    app.before_request(check_request_origin)
    app.after_request(add_security_headers)
