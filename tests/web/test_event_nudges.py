"""Event streams wake at once when a worker nudges the batch over Redis pub/sub, and fall back to
their polling pace (never an error) when Redis is away. Real Redis (this session's server)."""

from __future__ import annotations

import socket
import threading
import time
import uuid

from shared.platform.nudges import Waiter, nudge
from tests.conftest import private_redis


def test_a_nudge_wakes_the_waiter_at_once():
    with private_redis("webone") as url:
        batch_id = uuid.uuid4().hex
        waiter = Waiter(url, batch_id)
        try:
            assert waiter.wait(0.05) is False  # nothing yet: it waits the fallback out
            nudge(url, uuid.uuid4().hex)  # another batch's nudge does not wake it
            threading.Timer(0.2, nudge, (url, batch_id)).start()
            start = time.monotonic()
            assert waiter.wait(5.0) is True
            assert 0.15 < time.monotonic() - start < 1.5
            # Many nudges at once wake one read; the next wait is quiet again.
            for _ in range(5):
                nudge(url, batch_id)
            time.sleep(0.05)
            assert waiter.wait(1.0) is True
            assert waiter.wait(0.1) is False
        finally:
            waiter.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_without_redis_nudges_are_dropped_and_streams_poll():
    url = _closed_port_url()
    nudge(url, "b")  # no exception
    waiter = Waiter(url, "b")
    start = time.monotonic()
    assert waiter.wait(0.3) is False
    assert time.monotonic() - start >= 0.25
    waiter.close()
