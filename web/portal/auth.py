"""Portal sign-in: username and password checked against a slow hash, a signed session cookie.

``current_user()`` is the signed-in user (or None); ``login_required`` sends everyone else to the
sign-in page (the pages' scripts call REST API v1, which answers 401 itself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import g, redirect, request, session, url_for
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from shared.models import User
from web.auth import SESSION_EPOCH_KEY, end_sessions, session_is_current
from web.auth import SESSION_USER_KEY as USER_KEY
from web.portal.csrf import rotate_token
from web.portal.services import services

# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")


class SignedInUser:
    """The few facts about the user that pages need (not an ORM object: no session ties)."""

    def __init__(self, user_id: int, username: str, session_epoch: int = 0):
        self.id = user_id
        self.username = username
        self.session_epoch = session_epoch


def authenticate(username: str, password: str) -> SignedInUser | None:
    """The user when ``password`` matches, else None."""
    with services().sessions() as db:
        user = db.scalar(select(User).where(User.username == username.strip()))
        if user is None or not user.password_hash:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password):
            return None
        return SignedInUser(user.id, user.username, user.session_epoch)


def sign_in(user: SignedInUser) -> None:
    # A new session on sign-in: nothing set before (by anyone) carries over.
    session.clear()
    session[USER_KEY] = user.id
    session[SESSION_EPOCH_KEY] = user.session_epoch
    session.permanent = True
    rotate_token()


def sign_out() -> None:
    """End this user's sessions everywhere: a copy of the cookie is worthless from now on."""
    user_id = session.get(USER_KEY)
    if isinstance(user_id, int) and current_user() is not None:
        with services().sessions.begin() as db:
            end_sessions(db, user_id)
    session.clear()


def current_user() -> SignedInUser | None:
    if "portal_user" in g:
        return g.portal_user
    user = None
    user_id = session.get(USER_KEY)
    if isinstance(user_id, int):
        with services().sessions() as db:
            row = db.get(User, user_id)
            if session_is_current(row, session):
                user = SignedInUser(row.id, row.username, row.session_epoch)
    g.portal_user = user
    return user


def safe_next(target: str | None) -> str | None:
    """A same-site path to go back to after sign-in, or None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped
