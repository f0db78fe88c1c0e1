"""networks: every referral belongs to exactly one network

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Referrals made before networks existed belong to the demo network.
EXISTING_NETWORK = 'demo-city'


def upgrade() -> None:
    # Added as NOT NULL with a default in one step: on SQLite a batch copy of `referrals` would
    # drop the original table and, with foreign keys on, cascade to its history and assignments.
    op.add_column('referrals', sa.Column('network_id', sa.String(length=64), nullable=False,
                                         server_default=EXISTING_NETWORK))
    if op.get_bind().dialect.name != 'sqlite':
        # New referrals always name their network; SQLite cannot drop a default in place (harmless there).
        op.alter_column('referrals', 'network_id', server_default=None)
    op.create_index(op.f('ix_referrals_network_id'), 'referrals', ['network_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_referrals_network_id'), table_name='referrals')
    # In place (SQLite 3.35+ drops an unindexed column itself): no table copy, no cascade.
    op.execute(sa.text('ALTER TABLE referrals DROP COLUMN network_id'))
