"""One user's event streams cannot starve everybody else, on the web app as deployed (gunicorn
gthread workers in processes of their own, PostgreSQL, Redis): one user opens 50 streams at
once (50 editor tabs); past the per-user cap they are 429s answered at once, a process never
gives its last 4 threads to streams (503 past that), and another user's requests keep answering
within a second while the streams stay open."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from shared.platform.settings import Settings
from shared.store.migrate import upgrade
from tests.conftest import private_pg_database
from tests.faults.test_limits import _upload
from tests.support.redis_server import RedisServer
from tests.support.stack import GunicornServer
from tests.support.workers import register_live_worker

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def test_fifty_streams_of_one_user_leave_the_others_answered(tmp_path):
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    redis_server = RedisServer().start()
    with private_pg_database("anycost_streams") as pg_url:
        upgrade(pg_url)
        settings = Settings(database_url=pg_url, redis_url=redis_server.url(0),
                            model="tiny-random", weights_dir=str(tmp_path / "weights"))
        local = create_app(settings)
        register_live_worker(services(local).sessions, settings.model)  # uploads need a worker
        with services(local).sessions.begin() as session:
            tokens = [create_token(session, create_user(session, name))
                      for name in ("tabs", "other")]
        services(local).close()
        server = GunicornServer(settings, tmp_path / "gunicorn.log", workers=2, threads=8)
        streams: list[requests.Response] = []
        try:
            batch = _upload(server.url, tokens[0], 1).json()["id"]
            auth = {"Authorization": f"Bearer {tokens[0]}"}
            lock = threading.Lock()

            def open_one() -> None:
                r = requests.get(f"{server.url}/api/v1/batches/{batch}/events?timeout=60",
                                 headers=auth, stream=True, timeout=30)
                with lock:
                    streams.append(r)

            openers = [threading.Thread(target=open_one) for _ in range(50)]
            for t in openers:
                t.start()
            for t in openers:
                t.join(60)
            codes = sorted(r.status_code for r in streams)
            latencies = []
            other = {"Authorization": f"Bearer {tokens[1]}"}
            for _ in range(40):
                started = time.monotonic()
                answer = requests.get(f"{server.url}/api/v1/me", headers=other, timeout=10)
                latencies.append(time.monotonic() - started)
                assert answer.status_code == 200
            health = requests.get(f"{server.url}/healthz", timeout=10).status_code
        finally:
            for r in streams:
                r.close()
            server.stop()
            redis_server.close()
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    cap = settings.sse_max_per_user
    print(f"\n50 streams of one user (gunicorn 2 x 8 threads): {codes.count(200)} open, "
          f"{codes.count(429)} refused by the user's cap (429), {codes.count(503)} by a process's "
          f"(503); another user's GET /api/v1/me while they are "
          f"open: p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    # at most the user's cap open; the rest refused at once (429: the user's cap; 503: a process
    # keeps its last threads for other requests)
    assert 1 <= codes.count(200) <= cap and set(codes) <= {200, 429, 503}
    assert health == 200 and p99 < 1.0
