"""Rate limits (Flask-Limiter, counters in the service's Redis): failed portal sign-ins per
client address and per account name, failed API token checks per client address, batch uploads
per user (the API's and the portal's new-batch form together).

A sign-in attempt is counted before its password is checked (an atomic INCR per window) and
given back when it succeeds, so a parallel burst gets no more guesses through than the limit;
the default has a daily window beside the per-minute one.

Every limit is a setting (``ANYCOST_RATE_LIMIT_*``, limits syntax such as ``10 per minute``). A
breach is a 429 with ``Retry-After`` and the API's JSON error body. When Redis cannot be reached
the limits let requests through (logged): a broker outage must not lock everybody out.

The client address is ``request.remote_addr``; behind a reverse proxy set ``ANYCOST_PROXY_HOPS``
so that it is the client's, not the proxy's (web/__init__.py applies ProxyFix).
"""

from __future__ import annotations

import functools
import logging
import math
import time

import flask_login
from flask import Flask, abort, current_app, g, make_response, request
from flask_limiter import Limiter
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from shared.codes.errors import RequestErrorCode
from shared.platform.settings import Settings, SettingsError
from web.errors import ApiError

log = logging.getLogger(__name__)

EXTENSION_KEY = "anycost_limits"
LIMITER_TIMEOUT = 0.1  # seconds per rate-limit round trip to Redis
KEY_PREFIX = "anycost:ratelimit"


def client_address() -> str:
    return request.remote_addr or "unknown"


def _login_name() -> str:
    return "name:" + request.form.get("username", "").strip().lower()[:80]


def _user_key() -> str:
    user = flask_login.current_user  # loaded by web.auth before the view runs
    return f"user:{user.id}" if user.is_authenticated else f"addr:{client_address()}"


def _remember_reset(limit) -> None:
    g.rate_limit_retry_after = max(1, math.ceil(limit.reset_at - time.time()))


def _retry_after_header(response):
    if response.status_code == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(getattr(g, "rate_limit_retry_after", 1))
    return response


class RateLimits:
    """The app's limiter plus the failed-token-check counter (which no decorator can express:
    it must be tested before the token is checked and counted only when the check fails)."""

    def __init__(self, app: Flask, settings: Settings):
        for env, value in (("ANYCOST_RATE_LIMIT_LOGIN", settings.rate_limit_login),
                           ("ANYCOST_RATE_LIMIT_AUTH_FAILURES", settings.rate_limit_auth_failures),
                           ("ANYCOST_RATE_LIMIT_SUBMISSIONS", settings.rate_limit_submissions)):
            try:
                parse_many(value)
            except ValueError:  # fail at start-up, not on the first sign-in
                raise SettingsError(f"{env}={value!r}: expected e.g. '10 per minute'") from None
        self.enabled = settings.rate_limits
        self.limiter = Limiter(
            key_func=client_address, app=app, storage_uri=settings.redis_url,
            # A counter is one round trip (a millisecond on the deployment's network): a hung
            # Redis costs an upload a tenth of a second per check (two checks per upload), and
            # with the queue send (ANYCOST_REDIS_PUBLISH_TIMEOUT) under a second in all.
            storage_options={"socket_connect_timeout": LIMITER_TIMEOUT,
                             "socket_timeout": LIMITER_TIMEOUT},
            # Flask-Limiter's own headers would put Retry-After on every answer of a limited
            # view (even a 201); only a 429 gets it, from on_breach (see _retry_after_header).
            strategy="fixed-window", headers_enabled=False, swallow_errors=True,
            enabled=settings.rate_limits, key_prefix=KEY_PREFIX, on_breach=_remember_reset,
        )
        app.after_request(_retry_after_header)
        self.auth_failures = AuthFailures(
            settings, self.limiter.limiter if settings.rate_limits else None)
        self._guard_sign_in(app, parse_many(settings.rate_limit_login))
        # The API's upload and the portal's form share one per-user counter (a shared limit).
        submissions = self.limiter.shared_limit(settings.rate_limit_submissions, "submissions",
                                                key_func=_user_key, methods=["POST"])
        for endpoint in ("api.create_batch", "portal.new_batch"):
            if endpoint in app.view_functions:
                # The wrapped view checks its limit when it runs, after authentication.
                app.view_functions[endpoint] = submissions(app.view_functions[endpoint])

    def _guard_sign_in(self, app: Flask, items) -> None:
        """Failed sign-ins (the page answers them with 401) per address, and per account name
        so that many addresses cannot share the guessing of one password: each attempt is
        counted before the password is checked and given back when it succeeds."""
        view = app.view_functions.get("portal.login")
        if view is None:
            return

        @functools.wraps(view)
        def guarded(*args, **kwargs):
            if request.method != "POST" or not self.enabled:
                return view(*args, **kwargs)
            keys = ((KEY_PREFIX, "sign-in", "addr", client_address()),
                    (KEY_PREFIX, "sign-in", _login_name()))
            self._count(items, keys)
            response = make_response(view(*args, **kwargs))
            if response.status_code != 401:
                self._count(items, keys, cost=-1)
            return response

        app.view_functions["portal.login"] = guarded

    def _count(self, items, keys, cost: int = 1) -> None:
        """Add ``cost`` to every window of every key; 429 (after counting) when one is past its
        limit. Redis away: nothing counted, nothing refused."""
        refused = None
        try:
            for item in items:
                for key in keys:
                    if not self.limiter.limiter.hit(item, *key, cost=cost) and cost > 0:
                        reset = self.limiter.limiter.get_window_stats(item, *key)[0]
                        refused = max(refused or 0, math.ceil(reset - time.time()))
        except Exception as exc:
            log.warning("rate limit storage unavailable (%s); sign-in not limited", exc)
            return
        if refused is not None:
            g.rate_limit_retry_after = max(1, refused)
            abort(429, description="too many sign-in attempts; wait and try again")

    def check_auth_failures(self) -> None:
        """429 when this address has failed too many token checks lately."""
        self.auth_failures.check(client_address())

    def record_auth_failure(self) -> None:
        self.auth_failures.record(client_address())


class AuthFailures:
    """Failed API token checks per client address, in one Redis counter for the Flask app and
    the stream service (``web.streams``): the same limits strategy, storage and keys as the
    app's limiter. Blocking (a Redis round trip of at most ``LIMITER_TIMEOUT``)."""

    def __init__(self, settings: Settings, limiter=None):
        self.enabled = settings.rate_limits
        self.limits = parse_many(settings.rate_limit_auth_failures)
        if limiter is None and self.enabled:
            storage = storage_from_string(settings.redis_url,
                                          socket_connect_timeout=LIMITER_TIMEOUT,
                                          socket_timeout=LIMITER_TIMEOUT)
            limiter = FixedWindowRateLimiter(storage)
        self.limiter = limiter

    @staticmethod
    def _identifiers(address: str) -> tuple[str, ...]:
        return (KEY_PREFIX, "auth-failures", address)

    def check(self, address: str) -> None:
        """429 when ``address`` has failed too many token checks lately."""
        if not self.enabled:
            return
        try:
            for item in self.limits:
                if not self.limiter.test(item, *self._identifiers(address)):
                    reset = self.limiter.get_window_stats(item, *self._identifiers(address))[0]
                    wait = max(1, math.ceil(reset - time.time()))
                    raise ApiError(429, RequestErrorCode.TOO_MANY_REQUESTS,
                                   "too many failed authentication attempts; wait and try again",
                                   headers={"Retry-After": str(wait)})
        except ApiError:
            raise
        except Exception as exc:  # Redis away: let the request through
            log.warning("rate limit storage unavailable (%s); not limiting", exc)

    def record(self, address: str) -> None:
        if not self.enabled:
            return
        try:
            for item in self.limits:
                self.limiter.hit(item, *self._identifiers(address))
        except Exception as exc:
            log.warning("rate limit storage unavailable (%s); failure not counted", exc)


def init_app(app: Flask, settings: Settings) -> RateLimits:
    """Call after every blueprint is registered (limits wrap their views)."""
    limits = RateLimits(app, settings)
    app.extensions[EXTENSION_KEY] = limits
    return limits


def rate_limits() -> RateLimits | None:
    return current_app.extensions.get(EXTENSION_KEY)
