"""The suite's migrated databases (tests/support/databases.py): a pooled PostgreSQL database
comes back to the next test empty, its ids from 1, even when a test left a connection open;
a SQLite copy is at the head revision."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from shared.store.db import make_engine, make_session_factory
from shared.store.migrate import alembic_config
from shared.store.tables import User


def _add_user(url: str, name: str) -> tuple[int, object]:
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        user = User(username=name)
        session.add(user)
        session.flush()
        return user.id, engine


def test_a_pooled_database_comes_back_empty_with_ids_from_one(migrated_databases):
    url = migrated_databases.pg_acquire()
    first_id, engine = _add_user(url, "left-behind")
    _add_user(url, "another")
    idle = engine.connect()  # a test that forgot to close its connection
    idle.execute(text("SELECT 1"))
    migrated_databases.pg_release(url)
    idle.invalidate()  # its server side was ended by the release
    idle.close()
    again = migrated_databases.pg_acquire()
    try:
        assert again == url  # the same database, reused
        user_id, engine2 = _add_user(again, "fresh")
        with engine2.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(User)) == 1
        assert user_id == first_id == 1
        engine2.dispose()
    finally:
        engine.dispose()
        migrated_databases.pg_release(again)


def test_a_sqlite_copy_is_at_the_head_revision(migrated_databases, tmp_path):
    url = migrated_databases.sqlite_copy(f"sqlite:///{tmp_path / 'copy.db'}")
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
    engine.dispose()
