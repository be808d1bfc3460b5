"""editor: batch names, the faces found in a photo and per-face edits

Revision ID: 0008_editor
Revises: 0007_synthesis
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_editor'
down_revision: str | None = '0007_synthesis'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('face_edits', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('faces', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('faces')
        batch_op.drop_column('face_edits')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('name')
