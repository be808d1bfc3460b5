"""Alembic environment: the database URL comes from the caller (shared.store.migrate) or the
DATABASE_URL setting; target metadata is the models' own."""

from alembic import context

import shared.store.tables  # noqa: F401  (registers the tables on Base.metadata)
from shared.platform.settings import Settings
from shared.store.db import Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=url.startswith("sqlite"), compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
