"""Users and API tokens.

API clients send ``Authorization: Bearer <token>``. Tokens come from ``secrets.token_urlsafe`` and
only their sha256 is stored: a token is already high-entropy, so a fast hash is enough and lets us
find it by an indexed lookup. Passwords (portal log-in) get Werkzeug's slow salted hash.

One ``current_user`` for everyone: Flask-Login's, filled by ``load_request_user`` from a bearer
token (API paths) or the signed session cookie (``login_session``, the portal's sign-in). The API
accepts the session for reads always and for writes only with the session's CSRF token
(``csrf_matches``, the one CSRF check, which the portal's forms use too): a cookie alone must never
be able to change anything.

Sessions end for real: the signed cookie carries the user's ``session_epoch``, and signing out or
changing the password bumps it, so every cookie signed before stops working (``end_sessions``).
Tokens may expire (``expires_at``) and be revoked (``revoked_at``); a token that fails the check
counts against the caller's address (web.ratelimit). A token made with a token (``parent_id``)
never outlives its parent: its expiry is capped at the parent's and revoking the parent revokes
it, and its own children, at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import flask_login
from flask import Flask, request, session
from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from shared.store.tables import ApiToken, User, utcnow
from web.errors import ApiError
from web.extensions import db as request_db
from web.ratelimit import rate_limits

TOKEN_BYTES = 32
PREFIX_CHARS = 8
SESSION_USER_KEY = "user_id"
SESSION_EPOCH_KEY = "epoch"
SESSION_CSRF_KEY = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110: no CSRF check
# Recording every use would turn each read into a write; once a minute is plenty.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(user: User, password: str) -> bool:
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


class UserExists(ValueError):
    pass


def create_user(session: Session, username: str, password: str | None = None) -> User:
    """A new user (no token yet). Raises UserExists when the name is taken."""
    username = username.strip()
    if not username or len(username) > 80:
        raise ValueError("a user name is 1 to 80 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, name: str | None = None,
                expires_days: float | None = None,
                parent: ApiToken | None = None) -> tuple[str, ApiToken]:
    """A new API token for ``user`` and its row. The token is shown once and stored only hashed.
    ``parent``: the token that asks for it; the new one expires no later than the parent."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    if parent is not None and parent.expires_at is not None:
        expires_at = min(expires_at or parent.expires_at, parent.expires_at)
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:PREFIX_CHARS],
                   name=name, expires_at=expires_at,
                   parent_id=parent.id if parent is not None else None)
    session.add(row)
    session.flush()
    return token, row


def create_token(session: Session, user: User, name: str | None = None,
                 expires_days: float | None = None) -> str:
    """A new API token for ``user`` (shown once, stored only hashed)."""
    return issue_token(session, user, name, expires_days)[0]


def token_is_live(row: ApiToken, now=None) -> bool:
    now = now or utcnow()
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def revoke_token(session: Session, user_id: int, token_id: int) -> bool:
    """Revoke one of ``user_id``'s tokens and every token made from it, at any depth. False when
    there is no such live token."""
    now = utcnow()
    revoked = session.execute(
        update(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id,
                               ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount == 1
    parents = [token_id] if revoked else []
    while parents:
        children = list(session.scalars(select(ApiToken.id).where(
            ApiToken.parent_id.in_(parents), ApiToken.revoked_at.is_(None))))
        if children:
            session.execute(update(ApiToken).where(ApiToken.id.in_(children))
                            .values(revoked_at=now))
        parents = children
    return revoked


def end_sessions(session: Session, user_id: int) -> None:
    """Every portal/API session of the user signed so far stops working (the caller commits)."""
    session.execute(update(User).where(User.id == user_id)
                    .values(session_epoch=User.session_epoch + 1))


def set_password(session: Session, user: User, password: str) -> None:
    """A new password; sessions signed with the old one end (the caller commits)."""
    if not password:
        raise ValueError("the password must not be empty")
    user.password_hash = hash_password(password)
    session.flush()
    end_sessions(session, user.id)


def session_is_current(user: User | None, signed: dict) -> bool:
    """Whether a signed session still belongs to ``user``'s current epoch."""
    return user is not None and signed.get(SESSION_EPOCH_KEY) == user.session_epoch


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).options(joinedload(ApiToken.user))  # one query
                         .where(ApiToken.token_hash == hash_token(token)))
    now = utcnow()
    if row is None or not token_is_live(row, now):
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()
    return row.user


def login_session(user: User) -> None:
    """Log ``user`` into the Flask session (the portal's log-in)."""
    session.clear()
    session[SESSION_USER_KEY] = user.id
    session[SESSION_EPOCH_KEY] = user.session_epoch
    session[SESSION_CSRF_KEY] = secrets.token_urlsafe(24)
    session.permanent = True


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None (the Flask app
    and the stream service read it the same way)."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _bearer_token() -> str | None:
    return bearer_token(request.headers.get("Authorization"))


class SignedIn(flask_login.UserMixin):
    """Flask-Login's user: the account row and how this request proved it (token or session)."""

    def __init__(self, user: User, via: str):
        self.user = user
        self.via = via  # "token" | "session"

    def get_id(self) -> str:
        return str(self.user.id)

    def __getattr__(self, name: str):
        return getattr(self.user, name)


login_manager = flask_login.LoginManager()
# Sessions end by their epoch (end_sessions); Flask-Login's own protection would only rewrite
# the cookie.
login_manager.session_protection = None


def csrf_matches(sent: str | None) -> bool:
    """The one CSRF check: ``sent`` is this session's token."""
    expected = session.get(SESSION_CSRF_KEY) or ""
    return bool(expected) and bool(sent) and hmac.compare_digest(str(expected), str(sent))


@login_manager.request_loader
def load_request_user(_request) -> SignedIn | None:
    """The user of this request: a bearer token on API paths (a bad one is a 401 and counts
    against the caller's address), else the session of the current epoch."""
    db = request_db()
    token = _bearer_token() if request.path.startswith("/api/") else None
    if token is not None:
        limits = rate_limits()
        if limits is not None:
            limits.check_auth_failures()
        user = user_for_token(db, token)
        if user is None:
            if limits is not None:
                limits.record_auth_failure()
            raise ApiError(401, "unauthorized", "the API token is not valid")
        return SignedIn(user, "token")
    user_id = session.get(SESSION_USER_KEY)
    if not isinstance(user_id, int):
        return None
    user = db.get(User, user_id)
    if not session_is_current(user, session):
        session.clear()  # signed out elsewhere, or the password changed
        return None
    return SignedIn(user, "session")


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


def authenticate(db: Session | None = None) -> User:
    """The API's user of this request, or an ApiError: 401 when nobody is signed in, 403 for a
    session write without the CSRF header."""
    signed_in = flask_login.current_user
    if not signed_in.is_authenticated:
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
    if signed_in.via == "session" and request.method not in SAFE_METHODS \
            and not csrf_matches(request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "csrf", f"a session request that changes data needs {CSRF_HEADER}")
    return signed_in.user
