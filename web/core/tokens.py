"""API tokens: the plaintext is shown once; only its sha256 is stored, so a database leak leaks no tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.core.models import ApiToken

TOKEN_PREFIX = "llt_"


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_token(session: Session, name: str, is_admin: bool = False) -> tuple[ApiToken, str]:
    """Create and commit a token; return the row and the plaintext (which cannot be recovered later)."""
    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name[:100], token_hash=hash_token(plaintext), is_admin=is_admin)
    session.add(token)
    session.commit()
    return token, plaintext


def authenticate(session: Session, plaintext: str | None) -> ApiToken | None:
    """The token row for ``plaintext``, or None. A lookup by hash: timing reveals nothing about the token."""
    if not plaintext:
        return None
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext))).first()
