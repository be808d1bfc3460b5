"""Limits that cannot be raced or walked around, against the real app on a real HTTP port with
PostgreSQL and its own redis-server: parallel uploads against the quota, a parallel sign-in
burst against the limiter, the portal's new-batch form after the API's 429."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from shared.store.tables import Batch, Item
from tests.conftest import private_pg_database
from tests.support.redis_server import RedisServer
from tests.support.stack import WebServer

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

PASSWORD = "correct horse battery"
QUOTA = 200


@dataclass
class LimitStack:
    app: object
    url: str
    redis: RedisServer

    @property
    def sessions(self):
        from web.extensions import services

        return services(self.app).sessions

    def user(self, name: str, password: str | None = PASSWORD) -> tuple[int, str]:
        from web.auth import create_token, create_user

        with self.sessions.begin() as session:
            user = create_user(session, name, password)
            return user.id, create_token(session, user)


@pytest.fixture(scope="module")
def limit_stack() -> Iterator[LimitStack]:
    from shared.store.migrate import upgrade
    from web import create_app
    from web.extensions import services

    redis_server = RedisServer().start()
    with private_pg_database("anycost_limits") as pg_url:
        upgrade(pg_url)
        app = create_app({"database_url": pg_url, "redis_url": redis_server.url(0),
                          "secret_key": "limits", "user_quota": QUOTA, "max_files_per_batch": 60,
                          "rate_limit_submissions": "12 per hour", "VALIDATE_RESPONSES": True})
        server = WebServer(app)
        try:
            yield LimitStack(app, server.url, redis_server)
        finally:
            server.stop()
            services(app).close()
            redis_server.close()


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (seed % 256, 90, 40)).save(out, format="PNG")
    return out.getvalue()


def _upload(url: str, token: str, n: int) -> requests.Response:
    files = [("files", (f"p{i}.png", _png(i), "image/png")) for i in range(n)]
    return requests.post(f"{url}/api/v1/batches", files=files,
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_parallel_uploads_cannot_pass_the_quota_together(limit_stack):
    """8 threads upload 50 files each at once against a quota of 200: at most 4 get 201."""
    user_id, token = limit_stack.user("racer")
    start = threading.Barrier(8)
    answers: list[int] = []

    def one() -> None:
        start.wait()
        answers.append(_upload(limit_stack.url, token, 50).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with limit_stack.sessions() as session:
        waiting = session.scalar(select(func.count()).select_from(Item).join(Batch)
                                 .where(Batch.owner_id == user_id))
    print(f"\n8 parallel uploads x 50 files, quota {QUOTA}: answers {sorted(answers)}, "
          f"{waiting} items stored, {time.monotonic() - began:.1f} s")
    assert sorted(answers) == [201] * 4 + [429] * 4
    assert waiting == QUOTA
