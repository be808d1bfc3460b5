"""A Redis nudge when a batch's outbox has new events, so event streams wake at once.

The outbox (``shared.items.events``) stays the record: a stream reads its events from SQL. The worker
publishes the batch id on ``anycost:events:<batch_id>`` after it commits a transition; a stream
(``web.api.events``) waits on that channel instead of sleeping, and still reads SQL at least every
``fallback`` seconds, so a lost nudge or a Redis outage costs latency, never an event.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis

log = logging.getLogger(__name__)
PREFIX = "anycost:events:"
SOCKET_TIMEOUT = 0.5


def channel(batch_id: str) -> str:
    return PREFIX + batch_id


@lru_cache(maxsize=8)
def client(redis_url: str) -> redis.Redis:
    """This process's client of ``redis_url`` for short commands (half-second timeouts)."""
    return redis.Redis.from_url(redis_url, socket_timeout=SOCKET_TIMEOUT,
                                socket_connect_timeout=SOCKET_TIMEOUT)


def nudge(redis_url: str, batch_id: str) -> None:
    """Tell the batch's streams to read the outbox now. Best effort: never raises."""
    try:
        client(redis_url).publish(channel(batch_id), b"1")
    except redis.RedisError as exc:
        log.debug("no nudge for %s: %s", batch_id, exc)


class Waiter:
    """A stream's subscription: ``wait(seconds)`` returns early when the batch is nudged, or
    a message comes on one of the ``also`` channels (a preview long-poll's item lane)."""

    def __init__(self, redis_url: str, batch_id: str, also: tuple[str, ...] = ()):
        self._pubsub = None
        try:
            pubsub = redis.Redis.from_url(
                redis_url, socket_connect_timeout=SOCKET_TIMEOUT).pubsub(
                ignore_subscribe_messages=True)
            pubsub.subscribe(channel(batch_id), *also)
            self._pubsub = pubsub
        except redis.RedisError as exc:  # no Redis: the stream polls SQL at its fallback pace
            log.info("event stream of %s polls without nudges: %s", batch_id, exc)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when nudged. Drains any further queued nudges. The
        subscription's own confirmation is not a nudge: the wait goes on past it."""
        if self._pubsub is None:
            time.sleep(seconds)
            return False
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self._pubsub.get_message(timeout=left) is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass
                    return True
            return False
        except redis.RedisError:
            self.close()
            return False

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None
