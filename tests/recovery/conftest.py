"""Fixtures for the recovery tests: settings on a migrated database (SQLite and PostgreSQL), the
suite's own Redis database (``REDIS_DBS["recovery"]``), users, and helpers to read the queue."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis

from shared.commands.batches import Batches, Upload
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import Cost, Recipe
from shared.store.blobs import make_blob_store
from shared.store.db import make_engine, make_session_factory
from shared.store.tables import User
from tests.conftest import private_redis
from tests.support.workers import register_live_worker

RECIPE = Recipe(edits={}, preview=Cost(0.5, 256), final=Cost(1.0, 1024))


@pytest.fixture
def recovery_redis_url() -> Iterator[str]:
    with private_redis("recovery") as url:
        yield url


@pytest.fixture
def rclient(recovery_redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(recovery_redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(migrated, recovery_redis_url, tmp_path) -> Settings:
    return Settings(database_url=migrated, redis_url=recovery_redis_url, heartbeat_seconds=1,
                    heartbeat_timeout=30, visibility_timeout=60, max_attempts=3,
                    batch_queue_cap=4, user_quota=14, render_batch_size=8,
                    blob_store="filesystem", blob_dir=str(tmp_path / "blobs"))


@pytest.fixture
def sessions(settings):
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def make_jobs(settings: Settings, sessions) -> Batches:
    register_live_worker(sessions, settings.model)  # uploads need one
    return Batches(settings, sessions, make_blob_store(settings), Dispatcher(settings))


@pytest.fixture
def jobs(settings, sessions) -> Batches:
    return make_jobs(settings, sessions)


def add_user(sessions, name: str) -> int:
    with sessions.begin() as session:
        user = User(username=name, password_hash=None)
        session.add(user)
        session.flush()
        return user.id


@pytest.fixture
def owner_id(sessions) -> int:
    return add_user(sessions, "recovery-tester")


def make_batch(jobs: Batches, owner_id: int, n: int) -> str:
    uploads = [Upload(f"p{i}.png", b"\x89PNG not really" + bytes([i]), "image/png")
               for i in range(n)]
    return jobs.create_batch(owner_id, uploads, RECIPE)


def queued_ids(client: redis.Redis, queue: str) -> list[str]:
    """Item ids of every message waiting in ``queue`` (oldest first), flattened."""
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        for entry in body[0][0]:  # protocol 2: [args, kwargs, embed]; args[0] is the group
            out.append(entry[0] if isinstance(entry, list) else entry)
    return out
