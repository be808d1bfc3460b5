"""The web app alone on a real HTTP port (werkzeug, threaded) with PostgreSQL and its own
redis-server, no worker: for the limits and the request edge cases (tests/faults/test_limits.py,
tests/faults/test_edges.py); ``limit_stack`` is a fixture of the fault suite's conftest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import private_pg_database
from tests.support.redis_server import RedisServer
from tests.support.stack import WebServer
from tests.support.workers import register_live_worker

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

    @property
    def settings(self):
        from web.extensions import services

        return services(self.app).settings

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
                          "rate_limit_submissions": "12 per hour", "VALIDATE_RESPONSES": True,
                          "sse_heartbeat_seconds": 2})
        # Uploads need a live worker for the model (else 409 model_unavailable): a heartbeat row.
        register_live_worker(services(app).sessions, services(app).settings.model)
        server = WebServer(app)
        try:
            yield LimitStack(app, server.url, redis_server)
        finally:
            server.stop()
            services(app).close()
            redis_server.close()
