"""What keeps event streams from starving everyone else, on either server of the events route
(the Flask view and the stream service count together): a per-user cap on open streams, and the
credential a stream was opened with, checked again while it runs.

Open streams are counted in Redis, per user, in a sorted set of stream ids scored by when each
must have ended (the stream's own limit plus a margin), so a stream whose process died stops
counting by itself. Past ``ANYCOST_SSE_MAX_PER_USER`` a new stream is a 429 with Retry-After.
Redis away: streams are not counted (logged), as the rate limits do.

A stream re-reads its credential every ``RECHECK_SECONDS`` (``web.streams.feed``): the token it
was opened with must still be live (not revoked, not expired), the session's epoch still the
user's (sign-out and a password change bump it). Otherwise the stream ends, within seconds, not
at its timeout.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.store.tables import ApiToken, User
from web.auth import hash_token, token_is_live
from web.errors import ApiError

log = logging.getLogger(__name__)

KEY_PREFIX = "anycost:streams:"
MARGIN_SECONDS = 30
REDIS_TIMEOUT = 0.25


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
    def of_token(cls, user_id: int, token: str) -> Credential:
        return cls(user_id, hash_token(token), None)

    @classmethod
    def of_session(cls, user_id: int, epoch: int | None) -> Credential:
        return cls(user_id, None, epoch)

    def still_valid(self, db: Session) -> bool:
        if self.token_hash is not None:
            row = db.scalar(select(ApiToken).where(ApiToken.token_hash == self.token_hash))
            return row is not None and token_is_live(row)
        epoch = db.scalar(select(User.session_epoch).where(User.id == self.user_id))
        return epoch is not None and epoch == self.epoch


class StreamSlot:
    """One open stream's place in its user's count (``release`` when the stream ends). Blocking
    (one Redis round trip of at most ``REDIS_TIMEOUT``): the stream service runs it in its pool."""

    def __init__(self, redis_url: str, user_id: int, cap: int, lifetime: float):
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
            return
        self.held = True
        if open_now > cap:
            self.release()
            raise ApiError(429, "too_many_requests",
                           f"you have {cap} event streams open, the most at once; close one "
                           "(or wait for one to end) and try again",
                           headers={"Retry-After": "5"})

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            self.client.zrem(self.key, self.member)
        except redis.RedisError as exc:  # it expires by its score
            log.debug("stream slot not released: %s", exc)
