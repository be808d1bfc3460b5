"""Many event streams held open at once by one client thread (an asyncio loop with aiohttp), for
the stream service's tests and ``bench/streams.py``: the client side must not need a thread per
stream either, or it would measure itself."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

OPENED = b"event: snapshot"


class HeldStreams:
    """Opens every ``(url, headers)`` at once and holds the answered ones (200, read up to their
    snapshot) until ``close``. ``statuses``: each request's HTTP status in order (0: no answer
    within ``open_timeout``); ``opened_in``: seconds until all were answered."""

    def __init__(self, requests: list[tuple[str, dict]], open_timeout: float = 60):
        self.requests = requests
        self.open_timeout = open_timeout
        self.statuses: list[int] = []
        self.opened_in = 0.0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> HeldStreams:
        self._thread.start()
        if not self._ready.wait(self.open_timeout + 30):
            raise TimeoutError("the streams were not opened")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                started = time.monotonic()
                answers = await asyncio.gather(*(self._open(session, url, headers)
                                                 for url, headers in self.requests))
                self.opened_in = time.monotonic() - started
                self.statuses = [status for status, _ in answers]
                self._ready.set()
                await self._stop.wait()
                for _, response in answers:
                    if response is not None:
                        response.close()
        finally:
            self._ready.set()

    async def _open(self, session: aiohttp.ClientSession, url: str, headers: dict):
        try:
            async with asyncio.timeout(self.open_timeout):
                response = await session.get(url, headers=headers)
                if response.status != 200:
                    await response.read()
                    response.release()
                    return response.status, None
                seen = b""
                while OPENED not in seen:
                    chunk = await response.content.readany()
                    if not chunk:
                        break
                    seen += chunk
                return response.status, response
        except (TimeoutError, aiohttp.ClientError):
            return 0, None
