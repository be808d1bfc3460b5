"""Who opens a stream on the stream service, proved as the Flask app proves it (``web.auth``):
an API token (``Authorization: Bearer``, found by its hash; it must be live), else the portal's
signed session cookie, read with the app's ``SECRET_KEY`` by Flask's own session serializer, of
the user's current session epoch. A bad token counts against the client's address in the app's
own counter (``web.ratelimit.AuthFailures``): past ``ANYCOST_RATE_LIMIT_AUTH_FAILURES``, 429 on
both servers. Blocking (database and Redis reads): the service calls it in its pool.

Without ``SECRET_KEY`` (development: the Flask app signs with a random key per process) no
session can be read here, and only tokens open streams on the service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from itsdangerous import BadSignature
from sqlalchemy.orm import Session

from shared.platform.settings import Settings
from shared.store.tables import User
from web import SessionCookies, session_config
from web.auth import (
    SESSION_EPOCH_KEY,
    SESSION_USER_KEY,
    bearer_token,
    session_is_current,
    user_for_token,
)
from web.errors import ApiError
from web.ratelimit import AuthFailures
from web.streams.guard import Credential

log = logging.getLogger(__name__)


class StreamAuth:
    """The credential of a request to the stream service, or a 401 (ApiError)."""

    def __init__(self, settings: Settings):
        app = Flask("web.streams")
        app.config.update(SECRET_KEY=settings.secret_key or None, **session_config(settings))
        interface = SessionCookies()
        self._serializer = interface.get_signing_serializer(app)  # None without a secret
        self.cookie_name = interface.get_cookie_name(app)
        self._max_age = int(app.permanent_session_lifetime.total_seconds())
        self.failures = AuthFailures(settings)
        if self._serializer is None:
            log.warning("SECRET_KEY is not set: portal sessions cannot open event streams on "
                        "the stream service (API tokens can)")

    def credential(self, db: Session, authorization: str | None, cookie: str | None,
                   address: str) -> Credential:
        """The credential of a request from ``address`` (the client's, as ``web.ratelimit``
        counts it) with these ``Authorization`` header and session cookie values."""
        token = bearer_token(authorization)
        if token is not None:
            self.failures.check(address)
            user = user_for_token(db, token)
            if user is None:
                self.failures.record(address)
                raise ApiError(401, "unauthorized", "the API token is not valid")
            return Credential.of_token(user.id, token)
        signed = self._session(cookie)
        user_id = signed.get(SESSION_USER_KEY)
        user = db.get(User, user_id) if isinstance(user_id, int) else None
        if not session_is_current(user, signed):
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
        return Credential.of_session(user.id, signed.get(SESSION_EPOCH_KEY))

    def _session(self, cookie: str | None) -> Mapping:
        """The signed session's data, as Flask's ``open_session`` reads it; empty when there is
        no cookie or it is not ours (bad signature, too old)."""
        if not cookie or self._serializer is None:
            return {}
        try:
            data = self._serializer.loads(cookie, max_age=self._max_age)
        except BadSignature:
            return {}
        return data if isinstance(data, Mapping) else {}
