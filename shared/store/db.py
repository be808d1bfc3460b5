"""Database engine and sessions (SQLAlchemy 2.0).

SQLite is the embedded default for one machine; web and worker processes share the file, so it
runs in WAL mode with a busy timeout. PostgreSQL is used in production and in the integration tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")


class Base(DeclarativeBase):
    pass


def is_transient(exc: BaseException) -> bool:
    """A database error worth retrying: connection refused or lost, server shutting down,
    SQLite busy. Not a constraint violation or a bug."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_transient(fn: Callable[[], T], seconds: float, what: str = "database call") -> T:
    """``fn()``, called again with backoff (0.2 s doubling to 3 s) while it fails with a
    transient error, for up to ``seconds``; then the last error is raised. ``fn`` must be one
    transaction (retrying it whole is safe: its guarded updates do nothing the second time)."""
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(3.0, delay * 2)


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory when needed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL: a crash of any process loses nothing committed; only a power cut can lose
    # the last commits. It spares an fsync per commit, and the editor's loop makes several.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
