"""slack events seen: the Events API deliveries syncbot took on, keyed on event_id, so that Slack's retries of an
event run its work once across replicas (pruned after some hours)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 07:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import sync.models
from alembic import op

revision: str = '0008'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'slack_events_seen',
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('received_at', sync.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_slack_events_seen')),
    )
    with op.batch_alter_table('slack_events_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_events_seen_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slack_events_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_events_seen_received_at'))
    op.drop_table('slack_events_seen')
