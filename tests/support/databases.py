"""Migrated test databases without running the migrations for every test.

The migrations run once per pytest session, into a template: a SQLite file, and a PostgreSQL
database. A test's SQLite database is a copy of the template file (about 1 ms instead of about
0.8 s of Alembic). A test's PostgreSQL database comes from a pool: a clone of the template when
the pool is empty, and after the test its connections are ended, every table is emptied and
every sequence restarted (ids start at 1 again), so the next test finds it as freshly migrated. That spares Alembic (about 1.7 s) and ``DROP DATABASE`` (a forced checkpoint, seconds
when the machine is busy) per test. The migrations themselves keep their own tests
(``tests/shared/test_migrations.py`` compares a freshly upgraded database with the models).

A database that cannot be emptied is dropped, never reused; everything is dropped at the end
of the session.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ALEMBIC_TABLE = "alembic_version"
#: URLs of this process's databases that are at the head revision now (copies, pooled ones).
KNOWN_MIGRATED: set[str] = set()
#: The pytest session's instance (``tests/conftest.py``), for helpers outside fixtures.
SESSION: MigratedDatabases | None = None


def _sqlite_path(url: str) -> Path | None:
    return Path(url.split("///", 1)[1]) if url.startswith("sqlite:///") else None


class MigratedDatabases:
    """Copies of one migrated SQLite file and a pool of migrated PostgreSQL databases."""

    def __init__(self, workdir: Path, pg_admin_url: str, prefix: str = "anycost_test"):
        self.workdir = workdir
        self.pg_admin_url = pg_admin_url
        self.prefix = prefix
        self._lock = threading.Lock()
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_free: list[str] = []
        self._pg_all: list[str] = []
        self._tables: list[str] = []
        self.copies = KNOWN_MIGRATED

    # --- SQLite ---------------------------------------------------------------------------
    def sqlite_copy(self, url: str) -> str:
        """Fill the (new) SQLite file at ``url`` with the migrated template; the URL."""
        from shared.store.migrate import upgrade

        path = _sqlite_path(url)
        with self._lock:
            if self._sqlite_template is None:
                template = self.workdir / f"template-{uuid.uuid4().hex[:8]}.db"
                upgrade(f"sqlite:///{template}")
                with sqlite3.connect(template) as conn:  # everything into the main file
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._sqlite_template = template
        path.parent.mkdir(parents=True, exist_ok=True)
        source, target = sqlite3.connect(self._sqlite_template), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        self.copies.add(url)
        return url

    # --- PostgreSQL -------------------------------------------------------------------------
    def _admin(self):
        return create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")

    def _url(self, name: str) -> str:
        return self.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"

    def _create(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (from ``template``), remembered for the session's cleanup."""
        admin = self._admin()
        try:
            with admin.connect() as conn:
                copy = f' TEMPLATE "{template}"' if template else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        finally:
            admin.dispose()
        self._pg_all.append(name)
        return name

    def _make_pg_template(self) -> None:
        from shared.store.db import Base
        from shared.store.migrate import upgrade

        name = self._create(f"{self.prefix}_tpl_{uuid.uuid4().hex[:12]}")
        upgrade(self._url(name))
        self._pg_template = name
        self._tables = [t.name for t in Base.metadata.sorted_tables]

    def pg_acquire(self) -> str:
        """A migrated, empty PostgreSQL database of this session; give it back with
        :meth:`pg_release`."""
        with self._lock:
            if self._pg_template is None:
                self._make_pg_template()
            if self._pg_free:
                url = self._url(self._pg_free.pop())
                self.copies.add(url)
                return url
            name = self._create(f"{self.prefix}_{uuid.uuid4().hex[:12]}", self._pg_template)
        url = self._url(name)
        self.copies.add(url)
        return url

    def pg_release(self, url: str) -> None:
        """End the database's connections and empty it for the next test (or drop it)."""
        name = url.rsplit("/", 1)[1]
        self.copies.discard(url)
        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :name AND pid <> pg_backend_pid()"),
                             {"name": name})
            engine = create_engine(url)
            try:
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '10s'"))  # a straggler: drop it
                    # DELETE, children first: a few rows each, several times quicker than
                    # TRUNCATE (new files for every table and index).
                    for table in reversed(self._tables):
                        if table != ALEMBIC_TABLE:
                            conn.execute(text(f'DELETE FROM "{table}"'))
                    sequences = conn.scalars(text(
                        "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).all()
                    for sequence in sequences:  # ids start at 1 again
                        conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
            finally:
                engine.dispose()
        except Exception:  # noqa: BLE001 - a test left it unusable (connections refused ...): never reuse it
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            with self._lock:
                self._pg_all.remove(name)
            return
        finally:
            admin.dispose()
        with self._lock:
            self._pg_free.append(name)

    def close(self) -> None:
        """Drop every PostgreSQL database of this session (the SQLite files are pytest's)."""
        with self._lock:
            names, self._pg_all, self._pg_free = list(self._pg_all), [], []
            self._pg_template = None
        if not names:
            return
        admin = self._admin()
        try:
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
