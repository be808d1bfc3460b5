"""Prometheus collectors both web and worker expose, computed at scrape time from the source of
truth rather than counted in one process: items by status (SQL) and queue depth (Redis lists).

A failing source yields no sample rather than a failed scrape; ``/readyz`` reports outages.
"""

from __future__ import annotations

import redis
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from shared.items.states import ItemStatus
from shared.platform.queue import QUEUES
from shared.store.tables import Item

# kombu's Redis transport keeps one list per queue and priority step: "<queue>" for priority 0,
# "<queue>\x06\x16<step>" for the others.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)


class ItemStatusCollector:
    """``anycost_items{status}``: items in each status, counted in the database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self):
        counts = {s.value: 0 for s in ItemStatus}
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(Item.status, func.count()).group_by(Item.status))
                counts.update({status: int(n) for status, n in rows})
        except Exception:
            return
        family = GaugeMetricFamily("anycost_items", "Items by status.", labels=["status"])
        for status, n in counts.items():
            family.add_metric([status], n)
        yield family


def queue_depths(client: redis.Redis, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting in each Celery queue (not counting ones a worker has taken)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
        for step in KOMBU_PRIORITY_STEPS:
            pipe.llen(f"{queue}{KOMBU_PRIORITY_SEP}{step}")
    lengths = pipe.execute()
    per_queue = 1 + len(KOMBU_PRIORITY_STEPS)
    return {q: sum(lengths[i * per_queue:(i + 1) * per_queue]) for i, q in enumerate(queues)}


class QueueDepthCollector:
    """``anycost_queue_depth{queue}``: Redis LLEN of the preview and final queues."""

    def __init__(self, redis_url: str):
        self.client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)

    def collect(self):
        try:
            depths = queue_depths(self.client)
        except redis.RedisError:
            return
        family = GaugeMetricFamily("anycost_queue_depth", "Messages waiting in a queue.",
                                   labels=["queue"])
        for queue, n in depths.items():
            family.add_metric([queue], n)
        yield family
