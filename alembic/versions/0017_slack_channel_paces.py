"""slack channel paces: each Slack channel's pace and pause, shared by every replica's notifier

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import sync.models
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('slack_channel_paces',
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('next_post_at', sync.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paused_until', sync.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('channel_id', name=op.f('pk_slack_channel_paces'))
    )


def downgrade() -> None:
    op.drop_table('slack_channel_paces')
