"""The preview lane (shared.platform.preview_lane) on a private Redis: a newer version replaces
an older one, never the reverse; a reader asks for a least version; entries expire; with Redis
away both sides answer without raising."""

from __future__ import annotations

import redis

from shared.platform import preview_lane
from shared.platform.nudges import Waiter


def test_only_a_newer_version_replaces_the_entry(redis_url):
    assert preview_lane.publish(redis_url, "b1", "item-1", 3, "image/jpeg", b"three")
    assert not preview_lane.publish(redis_url, "b1", "item-1", 2, "image/jpeg", b"two")
    assert not preview_lane.publish(redis_url, "b1", "item-1", 3, "image/png", b"again")
    got = preview_lane.newest(redis_url, "item-1", 0)
    assert (got.version, got.media_type, got.data) == (3, "image/jpeg", b"three")
    assert preview_lane.publish(redis_url, "b1", "item-1", 4, "image/png", b"\x00four\xff")
    got = preview_lane.newest(redis_url, "item-1", 4)
    assert (got.version, got.media_type, got.data) == (4, "image/png", b"\x00four\xff")
    assert preview_lane.newest(redis_url, "item-1", 5) is None
    assert preview_lane.newest(redis_url, "item-2", 0) is None


def test_entries_expire(redis_url):
    preview_lane.publish(redis_url, "b1", "item-1", 0, "image/jpeg", b"x", ttl=60)
    ttl = redis.Redis.from_url(redis_url).ttl(preview_lane.key("item-1"))
    assert 0 < ttl <= 60


def test_a_publish_nudges_the_batch_and_a_stale_one_does_not(redis_url):
    waiter = Waiter(redis_url, "batch-9")
    try:
        waiter.wait(0.2)  # takes the subscription's confirmation (not a nudge)
        assert preview_lane.publish(redis_url, "batch-9", "item-1", 1, "image/jpeg", b"x")
        assert waiter.wait(2.0)
        assert not preview_lane.publish(redis_url, "batch-9", "item-1", 0, "image/jpeg", b"y")
        assert not waiter.wait(0.3)
    finally:
        waiter.close()


def test_redis_away_costs_nothing_but_the_lane():
    away = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    assert preview_lane.publish(away, "b1", "item-1", 1, "image/jpeg", b"x") is False
    assert preview_lane.newest(away, "item-1", 0) is None
