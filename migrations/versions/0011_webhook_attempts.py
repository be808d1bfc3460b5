"""webhook attempts: when a delivery was last tried (GET /api/v1/webhooks/deliveries)

Revision ID: 0011_webhook_attempts
Revises: 0010_token_parent
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_webhook_attempts'
down_revision: str | None = '0010_token_parent'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_attempt_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('last_attempt_at')
