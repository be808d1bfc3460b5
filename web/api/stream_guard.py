"""What keeps event streams (``web.api.events``) from starving everyone else: a per-user cap on
open streams, and the credentials a stream was opened with, checked again while it runs.

Open streams are counted in Redis, per user, in a sorted set of stream ids scored by when each
must have ended (the stream's own limit plus a margin), so a stream whose process died stops
counting by itself. Past ``ANYCOST_SSE_MAX_PER_USER`` a new stream is a 429 with Retry-After.
Redis away: streams are not counted (logged), as the rate limits do.

A stream holds a server thread while it is open (gunicorn gthread), so a web process never gives
its last ``RESERVED_THREADS`` threads to streams: past ``GUNICORN_THREADS`` - that many open
streams in one process, a new stream is a 503 with Retry-After (the browser's EventSource
reconnects), and the process keeps threads for everyone's other requests.

A stream re-reads its credential every ``RECHECK_SECONDS``: the token it was opened with must
still be live (not revoked, not expired), the session's epoch still the user's (sign-out and
a password change bump it). Otherwise the stream ends, within seconds, not at its timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import flask_login
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.store.tables import ApiToken, User
from web.auth import SESSION_EPOCH_KEY, hash_token, token_is_live
from web.errors import ApiError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0
KEY_PREFIX = "anycost:streams:"
MARGIN_SECONDS = 30
REDIS_TIMEOUT = 0.25
RESERVED_THREADS = 4  # per gunicorn process, never taken by streams


def _process_limit() -> int | None:
    threads = int(os.environ.get("GUNICORN_THREADS", "0") or 0)
    return max(1, threads - RESERVED_THREADS) if threads else None  # None: no thread pool


_LIMIT = _process_limit()
_PROCESS_SLOTS = threading.BoundedSemaphore(_LIMIT) if _LIMIT else None


def take_process_slot() -> bool:
    """A place for one more stream in this process (503 when none); True when one was taken
    (give it back with :func:`give_process_slot`)."""
    if _PROCESS_SLOTS is None:
        return False
    if not _PROCESS_SLOTS.acquire(blocking=False):
        raise ApiError(503, "unavailable", "this server has no room for another event stream "
                       "now; try again shortly", headers={"Retry-After": "5"})
    return True


def give_process_slot(taken: bool) -> None:
    if taken and _PROCESS_SLOTS is not None:
        _PROCESS_SLOTS.release()


@lru_cache(maxsize=8)
def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT,
                                socket_connect_timeout=REDIS_TIMEOUT)


@dataclass(frozen=True)
class Credential:
    """How the request that opened a stream proved who it is."""

    user_id: int
    token_hash: str | None  # the bearer token's hash, or None for a session
    epoch: int | None  # the session's epoch

    @classmethod
    def of_request(cls, request) -> Credential:
        signed = flask_login.current_user
        if signed.via == "token":
            header = request.headers.get("Authorization", "")
            return cls(signed.id, hash_token(header.partition(" ")[2].strip()), None)
        from flask import session

        return cls(signed.id, None, session.get(SESSION_EPOCH_KEY))

    def still_valid(self, db: Session) -> bool:
        if self.token_hash is not None:
            row = db.scalar(select(ApiToken).where(ApiToken.token_hash == self.token_hash))
            return row is not None and token_is_live(row)
        epoch = db.scalar(select(User.session_epoch).where(User.id == self.user_id))
        return epoch is not None and epoch == self.epoch


class StreamSlot:
    """One open stream's place in its user's count (``release`` when the stream ends)."""

    def __init__(self, redis_url: str, user_id: int, cap: int, lifetime: float):
        self.process_slot = False
        self.client = _client(redis_url)
        self.key = f"{KEY_PREFIX}{user_id}"
        self.member = uuid.uuid4().hex
        self.held = False
        now = time.time()
        try:
            pipe = self.client.pipeline()
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.zadd(self.key, {self.member: now + lifetime + MARGIN_SECONDS})
            pipe.expire(self.key, int(lifetime + 2 * MARGIN_SECONDS))
            pipe.zcard(self.key)
            open_now = pipe.execute()[-1]
        except redis.RedisError as exc:
            log.warning("stream count unavailable (%s); not limiting", exc)
            self.process_slot = take_process_slot()
            return
        self.held = True
        if open_now > cap:
            self.release()
            raise ApiError(429, "too_many_requests",
                           f"you have {cap} event streams open, the most at once; close one "
                           "(or wait for one to end) and try again",
                           headers={"Retry-After": "5"})
        try:
            self.process_slot = take_process_slot()
        except ApiError:
            self.release()
            raise

    def release(self) -> None:
        give_process_slot(self.process_slot)
        self.process_slot = False
        if not self.held:
            return
        self.held = False
        try:
            self.client.zrem(self.key, self.member)
        except redis.RedisError as exc:  # it expires by its score
            log.debug("stream slot not released: %s", exc)
