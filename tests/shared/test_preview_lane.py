"""The preview lane (shared.platform.preview_lane) on a private Redis: a newer version replaces
an older one, never the reverse; a reader asks for a least version; entries expire; with Redis
away both sides answer without raising."""

from __future__ import annotations

import redis

from shared.platform import preview_lane
from shared.platform.nudges import Waiter


def test_only_a_newer_version_replaces_the_entry(redis_url):
    assert preview_lane.publish(redis_url, "item-1", 3, "image/jpeg", b"three")
    assert not preview_lane.publish(redis_url, "item-1", 2, "image/jpeg", b"two")
    assert not preview_lane.publish(redis_url, "item-1", 3, "image/png", b"again")
    got = preview_lane.newest(redis_url, "item-1", 0)
    assert (got.version, got.media_type, got.data) == (3, "image/jpeg", b"three")
    assert preview_lane.publish(redis_url, "item-1", 4, "image/png", b"\x00four\xff")
    got = preview_lane.newest(redis_url, "item-1", 4)
    assert (got.version, got.media_type, got.data) == (4, "image/png", b"\x00four\xff")
    assert preview_lane.newest(redis_url, "item-1", 5) is None
    assert preview_lane.newest(redis_url, "item-2", 0) is None


def test_entries_expire(redis_url):
    preview_lane.publish(redis_url, "item-1", 0, "image/jpeg", b"x", ttl=60)
    ttl = redis.Redis.from_url(redis_url).ttl(preview_lane.key("item-1"))
    assert 0 < ttl <= 60


def test_a_publish_wakes_the_items_waiters_not_the_batchs_streams(redis_url):
    """The item's long-poll hears a new preview; the batch's event streams (which read SQL,
    where nothing is committed yet) sleep on; a stale publish wakes nobody."""
    lane = Waiter(redis_url, "batch-9", also=(preview_lane.channel("item-1"),))
    stream = Waiter(redis_url, "batch-9")
    try:
        lane.wait(0.2)  # takes the subscriptions' confirmations (not nudges)
        stream.wait(0.2)
        assert preview_lane.publish(redis_url, "item-1", 1, "image/jpeg", b"x")
        assert lane.wait(2.0)
        assert not stream.wait(0.3)
        assert not preview_lane.publish(redis_url, "item-1", 0, "image/jpeg", b"y")
        assert not lane.wait(0.3)
    finally:
        lane.close()
        stream.close()


def test_redis_away_costs_nothing_but_the_lane():
    away = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    assert preview_lane.publish(away, "item-1", 1, "image/jpeg", b"x") is False
    assert preview_lane.newest(away, "item-1", 0) is None
