"""token parents (a child's expiry capped, revocation cascades); items' group_lost (retries)

Revision ID: 0010_token_parent
Revises: 0009_worker_load_error
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_token_parent'
down_revision: str | None = '0009_worker_load_error'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_lost', sa.Integer(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_tokens_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key('fk_api_tokens_parent_id_api_tokens', 'api_tokens',
                                    ['parent_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_parent_id_api_tokens', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_api_tokens_parent_id'))
        batch_op.drop_column('parent_id')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('group_lost')
