"""item quality: realism of preview and final, how the face was projected, final-vs-preview
consistency

Revision ID: 0003_item_quality
Revises: 0001_initial
Create Date: 2026-12-01 08:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_item_quality'
down_revision: str | None = '0002_user_directions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview_realism', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('final_realism', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('projection', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('consistency', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('consistency')
        batch_op.drop_column('projection')
        batch_op.drop_column('final_realism')
        batch_op.drop_column('preview_realism')
