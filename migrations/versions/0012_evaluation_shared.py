"""evaluation sharing: when the operator shared an evaluation with every user (None: private)

Revision ID: 0012_evaluation_shared
Revises: 0011_webhook_attempts
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_evaluation_shared'
down_revision: str | None = '0011_webhook_attempts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('shared_at')
