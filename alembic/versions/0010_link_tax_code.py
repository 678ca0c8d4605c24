"""link tax code: the QuickBooks tax code an invoice's own tax is stated with after "Send JobsiteOn's tax" on a
total mismatch (every later push keeps sending the tax explicitly)

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07 10:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0010'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_code', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.drop_column('tax_code')
