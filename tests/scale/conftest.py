"""Scale-out fixtures: a system with any number of real Celery worker processes, each with its
own node name (as on separate hosts), against one Redis database of our own (10) and a private
PostgreSQL database; the web app on a real HTTP port. Workers log JSON lines (ANYCOST_LOG_JSON),
which the tests read back: each stored result names the worker that rendered it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from shared.platform.settings import Settings
from tests.conftest import redis_db_url
from tests.support.stack import REPO, ApiClient, WebServer, WorkerProcess, worker_env

#: Our own Redis database number (integration 11, worker 12, web 13, ops 14/15).
TINY_RECIPE = {"edits": {"smiling": 0.5},
               "preview": {"channels": 0.5, "resolution": 32},
               "final": {"channels": 1.0, "resolution": 64}}


class NamedWorker(WorkerProcess):
    """A ``celery worker`` with an exact node name (``w1@hostA``) and extra environment, e.g.
    the fairness cap and JSON logs; the rest (readiness, stopping) as ``WorkerProcess``."""

    def __init__(self, settings: Settings, node: str, log_path: Path, extra_env: dict[str, str],
                 queues: str = "preview,final"):
        self.log_path = log_path
        self.node = node
        cmd = [
            sys.executable, "-m", "celery", "-A", "worker.process.celery_app", "worker",
            "-Q", queues, "-c", "1", "-P", "prefork", "-n", node,
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env={**worker_env(settings), **extra_env}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def records(self) -> list[dict]:
        """The JSON log records of this worker (non-JSON lines, e.g. Celery's banner, skipped)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def stored(self, kind: str) -> list[dict]:
        """'preview'/'final' results this worker stored, in the order it stored them."""
        return [r for r in self.records() if r.get("kind") == kind and "rendered_by" in r]


@dataclass
class ScaleStack:
    settings: Settings
    api: ApiClient
    app: object
    user_id: int
    logs: Path
    extra_env: dict[str, str]
    workers: list[NamedWorker] = field(default_factory=list)

    @property
    def services(self):
        from web.extensions import services

        return services(self.app)

    def start_worker(self, node: str, wait: bool = True) -> NamedWorker:
        safe = node.replace("@", "_")
        worker = NamedWorker(self.settings, node, self.logs / f"{safe}-{len(self.workers)}.log",
                             self.extra_env)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker


@pytest.fixture
def scale_stack(request, pg_url, tiny_weights_dir, tmp_path) -> Iterator[ScaleStack]:
    """Web + PostgreSQL + Redis DB 10; workers started by the test (``start_worker``). Settings
    overrides come from ``@pytest.mark.scale_settings(batch_queue_cap=4, ...)``."""
    from shared.store.migrate import upgrade
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    marker = request.node.get_closest_marker("scale_settings")
    overrides = dict(marker.kwargs) if marker else {}
    upgrade(pg_url)
    redis_url = redis_db_url("scale")
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    settings = Settings(database_url=pg_url, redis_url=redis_url, model="tiny-random",
                        weights_dir=tiny_weights_dir, torch_threads=1, **overrides)
    extra_env = {"ANYCOST_LOG_JSON": "1", "ANYCOST_BATCH_QUEUE_CAP": str(settings.batch_queue_cap)}
    app = create_app(settings)
    app.config["VALIDATE_RESPONSES"] = True  # an answer off the OpenAPI document is a 500
    server = WebServer(app)
    stack = None
    try:
        with services(app).sessions.begin() as session:
            user = create_user(session, "scale")
            token = create_token(session, user)
            user_id = user.id
        stack = ScaleStack(settings, ApiClient(server.url, token), app, user_id, tmp_path, extra_env)
        yield stack
    finally:
        server.stop()
        for worker in (stack.workers if stack else []):
            worker.stop()
        services(app).close()
        broker.flushdb()
        broker.close()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "scale_settings(**kw): Settings overrides for scale_stack")


def second_user(stack: ScaleStack, name: str) -> ApiClient:
    """Another user with a token, on the same web server."""
    from web.auth import create_token, create_user

    with stack.services.sessions.begin() as session:
        token = create_token(session, create_user(session, name))
    return ApiClient(stack.api.base.rsplit("/api/v1", 1)[0], token)
