"""API tokens: the plaintext is shown once; only its sha256 is stored, so a database leak leaks no tokens.

Portal sessions are rows too (only the sha256 of the cookie's random id is stored): logging out deletes the
row and revoking a token deletes its sessions, so a copied cookie dies with them.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from web.core.models import ApiToken, PortalSession, utcnow

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
    """The live token row for ``plaintext``, or None. A lookup by hash: timing reveals nothing about the token."""
    if not plaintext:
        return None
    query = select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext), ApiToken.revoked_at.is_(None))
    return session.scalars(query).first()


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Mark the token revoked (its jobs stay) and end its portal sessions; KeyError if there is no such token."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise KeyError(token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.execute(delete(PortalSession).where(PortalSession.token_id == token_id))
    session.commit()
    return token


def start_session(session: Session, token: ApiToken) -> str:
    """A new portal session for ``token``; returns the random id the cookie carries."""
    session_id = secrets.token_urlsafe(32)
    session.add(PortalSession(id_hash=hash_token(session_id), token_id=token.id))
    session.commit()
    return session_id


def session_token(session: Session, session_id: str | None) -> ApiToken | None:
    """The live token of a portal session, or None when the session ended or its token was revoked."""
    if not session_id:
        return None
    query = select(ApiToken).join(PortalSession, PortalSession.token_id == ApiToken.id)
    query = query.where(PortalSession.id_hash == hash_token(session_id), ApiToken.revoked_at.is_(None))
    return session.scalars(query).first()


def end_session(session: Session, session_id: str | None) -> None:
    if session_id:
        session.execute(delete(PortalSession).where(PortalSession.id_hash == hash_token(session_id)))
        session.commit()
