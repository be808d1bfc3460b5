"""synthesis: items made from seeds (no upload; their W+ spec), workers of several configs

Revision ID: 0007_synthesis
Revises: 0006_web_hardening
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_synthesis'
down_revision: str | None = '0006_web_hardening'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('synthesis', sa.JSON(), nullable=True))
        batch_op.alter_column('upload_blob_id', existing_type=sa.String(length=32),
                              nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.alter_column('upload_blob_id', existing_type=sa.String(length=32),
                              nullable=False)
        batch_op.drop_column('synthesis')
