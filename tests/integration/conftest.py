"""The integration stack: for each database back-end (SQLite, PostgreSQL) one real Celery worker
process, the web app on a real HTTP port, a user with a token. Module-scoped: the worker loads its
models once for all the tests of a back-end. Workers are stopped (process group) at teardown."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import create_engine, text

from shared.settings import Settings
from tests.conftest import redis_db_url
from tests.integration.stack import ApiClient, WebServer, WorkerProcess

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('itest-db') / 'anycost.db'}"
        return
    name = f"anycost_itest_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Stack:
    settings: Settings
    api: ApiClient
    app: object  # the Flask app (its services: sessions, jobs, dispatcher, blobs)
    worker: WorkerProcess
    user_id: int

    @property
    def services(self):
        from web.extensions import services

        return services(self.app)


@pytest.fixture(scope="module")
def stack(database, tiny_weights_dir, tmp_path_factory) -> Iterator[Stack]:
    from shared.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user

    upgrade(database)
    redis_url = redis_db_url("integration")
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    settings = Settings(
        database_url=database, redis_url=redis_url, model="tiny-random",
        weights_dir=tiny_weights_dir, render_batch_size=4, torch_threads=1,
    )
    logs = tmp_path_factory.mktemp("itest-logs")
    backend = "pg" if database.startswith("postgresql") else "sqlite"
    worker = WorkerProcess(settings, f"itest-{backend}", logs / "worker.log")
    app = create_app(settings)
    server = WebServer(app)
    try:
        from web.extensions import services

        with services(app).sessions.begin() as session:
            user = create_user(session, "itest")
            token = create_token(session, user)
            user_id = user.id
        worker.wait_ready()
        yield Stack(settings, ApiClient(server.url, token), app, worker, user_id)
    finally:
        server.stop()
        worker.stop()
        from web.extensions import services

        services(app).close()
        broker.flushdb()
        broker.close()
    assert worker.proc.poll() is not None  # no worker left behind
