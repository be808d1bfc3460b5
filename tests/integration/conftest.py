"""The integration stack: for each database back-end (SQLite, PostgreSQL) one real Celery worker
process, the web app on a real HTTP port, a user with a token. Module-scoped: the worker loads its
models once for all the tests of a back-end. Workers are stopped (process group) at teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.platform.settings import Settings
from tests.conftest import private_pg_database, redis_db_url
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('itest-db') / 'anycost.db'}"
        return
    with private_pg_database("anycost_itest") as url:
        yield url


@pytest.fixture(scope="module")
def stack(database, tiny_weights_dir, tmp_path_factory) -> Iterator[Stack]:
    settings = Settings(
        database_url=database, redis_url=redis_db_url("integration"), model="tiny-random",
        weights_dir=tiny_weights_dir, render_batch_size=4, torch_threads=1,
    )
    logs = tmp_path_factory.mktemp("itest-logs")
    backend = "pg" if database.startswith("postgresql") else "sqlite"
    with running_stack(settings, f"itest-{backend}", logs / "worker.log", "itest") as stack:
        yield stack
    assert stack.worker.proc.poll() is not None  # no worker left behind
