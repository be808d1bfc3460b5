"""Portal sign-in: username and password checked against a slow hash, then the session of
``web.auth.login_session``. Who is signed in is Flask-Login's ``current_user`` (web.auth loads
it, for the API and the portal alike); ``login_required`` sends everyone else to the sign-in page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from shared.store.tables import User
from web.auth import end_sessions, login_session
from web.portal.services import services

# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")


class PasswordUser:
    """The few facts sign-in needs (not an ORM object: no session ties)."""

    def __init__(self, user_id: int, username: str, session_epoch: int = 0):
        self.id = user_id
        self.username = username
        self.session_epoch = session_epoch


def check_password_login(username: str, password: str) -> PasswordUser | None:
    """The user when ``password`` matches, else None."""
    with services().sessions() as db:
        user = db.scalar(select(User).where(User.username == username.strip()))
        if user is None or not user.password_hash:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password):
            return None
        return PasswordUser(user.id, user.username, user.session_epoch)


def sign_in(user: PasswordUser) -> None:
    # A new session (and CSRF token) on sign-in: nothing set before (by anyone) carries over.
    login_session(user)


def sign_out() -> None:
    """End this user's sessions everywhere: a copy of the cookie is worthless from now on."""
    if signed_in() is not None:
        with services().sessions.begin() as db:
            end_sessions(db, current_user.id)
    session.clear()


def signed_in():
    """The signed-in user (Flask-Login's ``current_user``) or None, for pages and templates."""
    return current_user if current_user.is_authenticated else None


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
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped
