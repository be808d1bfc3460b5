"""Fixtures for the API tests: an app on a migrated database (SQLite and PostgreSQL) with a real,
private Redis database, users with tokens, and helpers to read the queue and make images."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import private_redis
from tests.support.workers import register_live_worker
from web import create_app
from web.auth import create_token, create_user
from web.extensions import services

# Web tests use their own Redis database number so that runs beside other suites do not clash.
MODEL = "anycost-ffhq-config-f"  # the web side never loads weights; 1024 px for the cost checks


@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis("web") as url:
        yield url


def make_app(**overrides):
    config = {"model": MODEL,
              "blob_store": "database", "TESTING": True, "VALIDATE_RESPONSES": True}
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app_factory(migrated, redis_url):
    """Apps on the test database with settings overrides; their engines are closed afterwards."""
    apps = []

    def factory(**overrides):
        overrides.setdefault("redis_url", redis_url)
        on_test_database = overrides.setdefault("database_url", migrated) == migrated
        apps.append(make_app(**overrides))
        if on_test_database:  # (not a fresh or an unreachable one) uploads need a live worker
            svc = services(apps[-1])
            register_live_worker(svc.sessions, svc.settings.model)
        return apps[-1]

    yield factory
    for app in apps:
        services(app).close()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


def add_user(app, name: str) -> tuple[int, str]:
    with services(app).sessions.begin() as session:
        user = create_user(session, name)
        return user.id, create_token(session, user)


@pytest.fixture
def alice(app) -> dict:
    user_id, token = add_user(app, "alice")
    return {"id": user_id, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture
def bob(app) -> dict:
    user_id, token = add_user(app, "bob")
    return {"id": user_id, "token": token, "headers": {"Authorization": f"Bearer {token}"}}
