"""recovery: blobs know their batch (deleting a batch removes every byte, orphans included)

Revision ID: 0005_recovery
Revises: 0001_initial
Create Date: 2026-12-01 08:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_recovery'
down_revision: str | None = '0004_evaluations'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_blobs_batch_id'), ['batch_id'], unique=False)
    with op.batch_alter_table('items', schema=None) as batch_op:
        # The reconciler's scan: active items by status and when they were sent.
        batch_op.create_index('ix_items_status_enqueued', ['status', 'enqueued_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_status_enqueued')
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blobs_batch_id'))
        batch_op.drop_column('batch_id')
