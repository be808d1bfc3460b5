"""users' own edit directions and direction strips

Revision ID: 0002_user_directions
Revises: 0001_initial
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_user_directions'
down_revision: str | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('user_directions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('model_name', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=True),
    sa.Column('vector', sa.JSON(), nullable=True),
    sa.Column('slots', sa.JSON(), nullable=False),
    sa.Column('gain', sa.Float(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_id', 'model_name', 'name')
    )
    with op.batch_alter_table('user_directions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_directions_owner_id'), ['owner_id'], unique=False)

    op.create_table('direction_strips',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=80), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('cost', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('blob_id', sa.String(length=32), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['blob_id'], ['blobs.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('direction_strips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_direction_strips_item_id'), ['item_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('direction_strips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_direction_strips_item_id'))
    op.drop_table('direction_strips')
    with op.batch_alter_table('user_directions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_directions_owner_id'))
    op.drop_table('user_directions')
