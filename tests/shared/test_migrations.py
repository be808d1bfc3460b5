"""The schema only changes through migrations: one head, and head == the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import shared.store.tables  # noqa: F401
from shared.store.db import Base, make_engine
from shared.store.migrate import alembic_config


def test_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_every_revision_is_named():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for rev in script.walk_revisions():
        assert rev.doc and rev.doc.strip(), f"revision {rev.revision} has no message"
        assert not all(c in "0123456789abcdef" for c in rev.revision), "use a readable revision id"


def test_upgrade_head_matches_models(migrated):
    engine = make_engine(migrated)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []
