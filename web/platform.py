"""What the app is wired to (settings, storage, the enqueue function, the broker check), reachable from views.

The factory builds one :class:`Platform` and stores it on the app, so tests can inject a recorder for
``enqueue`` or a storage pointing anywhere, without globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g, request, session

from web.core.errors import AuthenticationRequired
from web.core.models import ApiToken
from web.core.settings import Settings
from web.core.storage import ObjectStorage
from web.core.tokens import authenticate, session_token
from web.request_session import get_session

EXTENSION = "lowlight"


@dataclass
class Platform:
    settings: Settings
    storage: ObjectStorage
    enqueue: Callable[[int], None]
    check_broker: Callable[[], None]


def platform() -> Platform:
    return current_app.extensions[EXTENSION]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationRequired("use 'Authorization: Bearer <token>'")
    return value.strip()


def current_token() -> ApiToken | None:
    """The caller's token: a Bearer header, else the portal session's token; None when auth is off.

    Revoked tokens and ended sessions admit no one (web/core/tokens.py).

    With auth required, a request with neither is refused. A wrong token is refused even when auth is off,
    because silently treating it as anonymous would show the caller someone else's (anonymous) jobs.
    """
    if "api_token" in g:
        return g.api_token
    db = get_session()
    plaintext = _bearer()
    token: ApiToken | None = None
    if plaintext is not None:
        token = authenticate(db, plaintext)
        if token is None:
            raise AuthenticationRequired("the token is not valid")
    elif session.get("sid") is not None:
        token = session_token(db, session["sid"])
        if token is None:
            session.pop("sid", None)
    if token is None and platform().settings.auth_required:
        raise AuthenticationRequired("an API token is required (Authorization: Bearer <token>)")
    g.api_token = token
    return token
