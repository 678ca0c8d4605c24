"""push batches: each QuickBooks batch request stored (members, payloads, requestid) before it is sent, and the
batch each attempt went out in, so a batch cut short by a crash is sent again exactly as it was

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 07:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import sync.models
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'push_batches',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('connection_id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('created_at', sync.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('settled_at', sync.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['connection_id'], ['connections.id'],
                                name=op.f('fk_push_batches_connection_id_connections'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_push_batches')),
    )
    with op.batch_alter_table('push_batches', schema=None) as batch_op:
        batch_op.create_index('ix_push_batches_open', ['connection_id', 'settled_at'], unique=False)
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_sync_log_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_sync_log_batch_id_push_batches'), 'push_batches', ['batch_id'],
                                    ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sync_log_batch_id_push_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sync_log_batch_id'))
        batch_op.drop_column('batch_id')
    with op.batch_alter_table('push_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_push_batches_open')
    op.drop_table('push_batches')
