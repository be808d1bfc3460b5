"""worker_load_error: a worker that cannot load its model says why (reason and fix) in its heartbeat row

Revision ID: 0009_worker_load_error
Revises: 0008_editor
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_worker_load_error'
down_revision: str | None = '0008_editor'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('load_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('load_fix', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.drop_column('load_fix')
        batch_op.drop_column('load_error')
