"""Fixtures for the whole suite: databases (SQLite and a private PostgreSQL database), a private
Redis database number, the settings that point at them. Real services, no mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# ``worker`` first: its OpenMP wait policy (worker/__init__.py) must be set before any test
# imports torch, which runs in this process beside worker processes on the same cores.
import worker  # noqa: F401
from tests.support import databases as support_databases
from tests.support.databases import KNOWN_MIGRATED, MigratedDatabases
from tests.support.redis_server import RedisServer, close_session_server, session_server

# The weights CLI fixture ``cli`` of the import tests (tests/nvidia, tests/encoders).
pytest_plugins = ["tests.support.weights_cli"]

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


def _pg_admin_engine():
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def private_pg_database(prefix: str = "anycost_test") -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); its URL."""
    from sqlalchemy import text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, reported loudly
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, private PostgreSQL database for one test."""
    with private_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'anycost.db'}"


@pytest.fixture(scope="session", autouse=True)
def migrated_databases(tmp_path_factory) -> Iterator[MigratedDatabases]:
    """The session's migrated templates (``tests.support.databases``): the migrations run once,
    when a test first needs them."""
    databases = MigratedDatabases(tmp_path_factory.mktemp("db-templates"), PG_ADMIN_URL)
    support_databases.SESSION = databases
    yield databases
    support_databases.SESSION = None
    databases.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, migrated_databases) -> Iterator[str]:
    """Both database back-ends, at the head revision and empty: a copy of the session's
    migrated SQLite file (at ``sqlite_url``), or a migrated PostgreSQL database of the session's
    pool, emptied after the test."""
    if request.param == "sqlite":
        yield migrated_databases.sqlite_copy(request.getfixturevalue("sqlite_url"))
        return
    try:
        url = migrated_databases.pg_acquire()
    except Exception as exc:  # pragma: no cover - environment problem, reported loudly
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    yield url
    migrated_databases.pg_release(url)


#: Database numbers on the session's private redis-server, one per suite: a suite's real Celery
#: workers must never take (or flush) another suite's messages.
REDIS_DBS = {
    "web": 1,
    "portal": 2,
    "pipeline_faces_stack": 3,
    "pipeline_faces": 4,
    "shared": 5,
    "scale": 6,
    "integration": 7,
    "worker": 8,
    "browser": 9,
    "ops": 10,
    "directions": 11,
    "quality": 12,
    "quality_stack": 13,
    "evaluate": 14,
    "recovery": 15,
    "faults": 16,  # the fault suite runs its own redis-server; this number names its database
    "webhard": 21,  # tests/web hardening: idempotency, webhooks, SSE, tokens, schemathesis
    "webhard_limits": 22,  # tests/web/test_rate_limits.py (Flask-Limiter counters)
    "synthesis": 23,  # tests/synthesis: seeds -> batches, in-process worker
    "synthesis_stack": 24,  # tests/synthesis: two real workers of two configs
    "webone": 25,  # tests/web/test_event_nudges.py (pub/sub nudges of event streams)
    "gunicorn": 27,  # tests/deploy/test_gunicorn.py (the web app as deployed)
    "truth": 29,  # tests/integration/test_model_truth.py and test_run_stack.py (model truth)
}

def session_redis() -> RedisServer:
    """This pytest session's own redis-server (started on first use, stopped at the end).

    It lives in ``tests.support.redis_server``: this file is imported twice (as pytest's conftest and as
    ``tests.conftest`` by the suites), and a global here would exist once per import."""
    return session_server()


def pytest_sessionfinish(session, exitstatus):
    close_session_server()


def redis_db_url(suite: str) -> str:
    return session_redis().url(REDIS_DBS[suite])


@contextmanager
def private_redis(suite: str) -> Iterator[str]:
    """The URL of ``suite``'s own database on the private server, flushed before and after."""
    import redis

    url = redis_db_url(suite)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of our own (suites with workers override this with their own number)."""
    with private_redis("shared") as url:
        yield url


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory) -> str:
    """tiny-random weights, built once per pytest session (by the first worker that needs them)."""
    return str(tmp_path_factory.getbasetemp() / "weights-tiny-random")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_weights_dir):
    from worker.anycost.bundle import load_bundle

    return load_bundle("tiny-random", tiny_weights_dir, device="cpu")


@contextmanager
def pipeline_runtime(database_url: str, redis_url: str, bundle, weights_dir: str, name: str):
    """A worker runtime (the pipeline runs in the test's process) on a migrated database."""
    from shared.platform.settings import Settings
    from worker.render.runtime import build_runtime

    ensure_migrated(database_url)
    settings = Settings(database_url=database_url, redis_url=redis_url, model="tiny-random",
                        weights_dir=weights_dir, render_batch_size=4)
    rt = build_runtime(settings, name, bundle=bundle)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def owner(runtime) -> int:
    """A user in the database of the suite's ``runtime`` fixture."""
    from shared.store.tables import User

    with runtime.sessions.begin() as session:
        user = User(username="owner")
        session.add(user)
        session.flush()
        return user.id


def ensure_migrated(database_url: str) -> str:
    """``database_url`` at the head revision: as it is when it came migrated from the session's
    templates (``database_url``), a copy of the SQLite template for a new SQLite file, else
    upgraded now."""
    from shared.store.migrate import upgrade

    if database_url in KNOWN_MIGRATED:
        return database_url
    path = Path(database_url.split("///", 1)[1]) if database_url.startswith("sqlite:///") else None
    if path is not None and not path.exists() and support_databases.SESSION is not None:
        return support_databases.SESSION.sqlite_copy(database_url)
    upgrade(database_url)
    return database_url


@pytest.fixture
def migrated(database_url: str) -> str:
    """A database URL at the head revision."""
    return ensure_migrated(database_url)


def batches_for(rt):
    """The user commands (``shared.commands.batches.Batches``) over a worker runtime's database,
    blobs and queue: how tests create, edit and finalize batches next to an in-process worker."""
    from shared.commands.batches import Batches
    from tests.support.workers import register_live_worker

    # The pipeline runs in the test's process, without heartbeats: uploads need a live worker.
    register_live_worker(rt.sessions, rt.settings.model)
    batches = Batches(rt.settings, rt.sessions, rt.blobs, rt.sender.dispatcher)
    batches.sender = rt.sender  # one sending policy: a test that changes the runtime's, changes it
    return batches
