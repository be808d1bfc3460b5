"""The preview lane: each item's newest preview image in Redis, published by the worker the
moment it is encoded, before its SQL transaction, so a client waiting for that edit version
(``GET /items/<id>/preview?v=N&wait=S``) gets the picture without waiting for the database.

SQL stays the record. The lane only lets a waiting client see a picture early: the worker then
stores the same bytes and moves the item to ``preview_ready`` as before, and every other read
(the item's JSON, the image without ``wait``, the event stream) comes from SQL. What the lane can
show that SQL never will: the preview of a version whose transaction then loses (the item was
canceled, or edited again, meanwhile) - still a true render of the edit the client asked for.

Each item has one entry (``anycost:preview:<item_id>``: version, media type, bytes), replaced
only by a newer version (a Lua script compares and sets in one step, so an older render that
finishes late never replaces a newer one) and gone after ``TTL_SECONDS``. The same script
publishes on the item's own channel (``anycost:lane:<item_id>``), which only its waiting
clients hear: the batch's event streams, which read SQL, are woken by the commit alone. The
reader checks who owns the item in SQL before it looks here. Both sides are best effort: with
Redis away the worker publishes nothing and the client waits for SQL, as it did before the lane.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import redis

from shared.platform.nudges import client as _client

log = logging.getLogger(__name__)

PREFIX = "anycost:preview:"
CHANNEL_PREFIX = "anycost:lane:"
#: Long enough for any client to come back for a version it asked for; an entry is at most
#: one preview image a recently edited item.
TTL_SECONDS = 120

# KEYS[1] the entry; ARGV: version, media type, bytes, ttl, the item's lane channel. Sets
# unless a newer or the same version is there, then publishes on the channel (one round trip);
# returns 1 when it set.
_PUT = """
local held = redis.call('HGET', KEYS[1], 'version')
if held and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'type', ARGV[2], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[5], '1')
return 1
"""


@dataclass(frozen=True)
class LanePreview:
    version: int
    media_type: str
    data: bytes


def key(item_id: str) -> str:
    return PREFIX + item_id


def channel(item_id: str) -> str:
    """Where a new preview of the item is announced (a ``nudges.Waiter`` listens)."""
    return CHANNEL_PREFIX + item_id


def publish(redis_url: str, item_id: str, version: int, media_type: str, data: bytes,
            ttl: int = TTL_SECONDS) -> bool:
    """Put the item's preview of ``version`` in the lane unless it holds a newer one, and
    announce it on the item's channel (the waiting clients look). Best effort: False (and a
    debug line) when Redis is away."""
    try:
        return bool(_script(redis_url)(keys=[key(item_id)], args=[
            int(version), media_type, data, int(ttl), channel(item_id)]))
    except redis.RedisError as exc:
        log.debug("preview of %s v%d not in the lane: %s", item_id, version, exc)
        return False


@lru_cache(maxsize=8)
def _script(redis_url: str):
    """The compare-and-set script, sent by its hash after the first call (EVALSHA)."""
    return _client(redis_url).register_script(_PUT)


def newest(redis_url: str, item_id: str, min_version: int) -> LanePreview | None:
    """The item's lane preview when it is of ``min_version`` or newer; None otherwise, and when
    Redis is away."""
    try:
        version, media_type, data = _client(redis_url).hmget(key(item_id), "version", "type",
                                                             "data")
    except redis.RedisError as exc:
        log.debug("lane of %s not read: %s", item_id, exc)
        return None
    if version is None or data is None or int(version) < min_version:
        return None
    return LanePreview(int(version), media_type.decode(), bytes(data))

