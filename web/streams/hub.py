"""The stream service's nudges: one Redis pub/sub connection per process (``redis.asyncio``),
subscribed to every batch's channel (``shared.platform.nudges``, pattern ``anycost:events:*``),
wakes the streams of the batch a worker nudged. One connection however many streams are open,
and no subscribe or unsubscribe per stream.

Redis away or the connection lost: it reconnects every ``RECONNECT_SECONDS`` and the streams
read SQL at their fallback pace (``POLL_SECONDS``) meanwhile: a lost nudge costs latency, never
an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.platform.nudges import PREFIX

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
CONNECT_TIMEOUT = 0.5


class Nudged:
    """One stream's wake-up: set by the hub when its batch is nudged."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Up to ``seconds``, less when nudged (also by a nudge since the last wait); True when
        nudged."""
        if not self.event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.event.wait()
        nudged = self.event.is_set()
        self.event.clear()
        return nudged


class NudgeHub:
    """Every open stream's ``Nudged`` by batch id, woken from one pattern subscription."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self._waiting: dict[str, set[Nudged]] = {}
        self._task: asyncio.Task | None = None
        self.connected = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nudge-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def listen(self, batch_id: str) -> Iterator[Nudged]:
        nudged = Nudged()
        self._waiting.setdefault(batch_id, set()).add(nudged)
        try:
            yield nudged
        finally:
            waiting = self._waiting.get(batch_id)
            if waiting is not None:
                waiting.discard(nudged)
                if not waiting:
                    del self._waiting[batch_id]

    def wake(self, batch_id: str) -> None:
        for nudged in self._waiting.get(batch_id, ()):
            nudged.event.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("stream nudges lost (%s); streams poll until Redis is back", exc)
                self.connected = False
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=CONNECT_TIMEOUT)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(PREFIX + "*")
            self.connected = True
            log.info("stream nudges subscribed")
            for batch_id in list(self._waiting):  # what was missed while away: read now
                self.wake(batch_id)
            async for message in pubsub.listen():
                if message.get("type") == "pmessage":
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode("utf-8", "replace")
                    self.wake(channel[len(PREFIX):])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
