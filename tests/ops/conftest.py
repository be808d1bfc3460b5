"""Fixtures for the operations tests: settings on a migrated database (SQLite and PostgreSQL),
a Redis database of our own (15) and helpers to create batches and read queued messages."""

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


@pytest.fixture
def ops_redis_url() -> Iterator[str]:
    with private_redis("ops") as url:
        yield url


@pytest.fixture
def rclient(ops_redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(ops_redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(migrated, ops_redis_url) -> Settings:
    return Settings(database_url=migrated, redis_url=ops_redis_url, heartbeat_seconds=1,
                    heartbeat_timeout=90, max_attempts=3, batch_queue_cap=16,
                    render_batch_size=8, blob_store="database")


@pytest.fixture
def sessions(settings):
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def jobs(settings, sessions) -> Batches:
    register_live_worker(sessions, settings.model)  # uploads need one
    return Batches(settings, sessions, make_blob_store(settings), Dispatcher(settings))


@pytest.fixture
def owner_id(sessions) -> int:
    with sessions.begin() as session:
        user = User(username="ops-tester", password_hash=None)
        session.add(user)
        session.flush()
        return user.id


def make_batch(jobs: Batches, owner_id: int, n: int) -> str:
    uploads = [Upload(f"p{i}.png", b"\x89PNG not really" + bytes([i]), "image/png")
               for i in range(n)]
    recipe = Recipe(edits={}, preview=Cost(0.5, 256), final=Cost(1.0, 1024))
    return jobs.create_batch(owner_id, uploads, recipe)


def queued_args(client: redis.Redis, queue: str) -> list:
    """The first argument of every Celery message waiting in ``queue`` (oldest first)."""
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append(body[0][0])  # protocol 2: [args, kwargs, embed]
    return out
