"""qbo budgets: one QuickBooks request budget per realm shared by every process (the realm's lock row and pause,
and a row per request spent)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 11:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import sync.models
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('qbo_budgets',
    sa.Column('realm_id', sa.String(length=32), nullable=False),
    sa.Column('paused_until', sync.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('realm_id', name=op.f('pk_qbo_budgets'))
    )
    op.create_table('qbo_spends',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('realm_id', sa.String(length=32), nullable=False),
    sa.Column('at', sync.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('is_batch', sa.Boolean(), nullable=False),
    sa.Column('done_at', sync.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qbo_spends'))
    )
    with op.batch_alter_table('qbo_spends', schema=None) as batch_op:
        batch_op.create_index('ix_qbo_spends_realm_at', ['realm_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('qbo_spends', schema=None) as batch_op:
        batch_op.drop_index('ix_qbo_spends_realm_at')
    op.drop_table('qbo_spends')
    op.drop_table('qbo_budgets')
