"""referral/v2 sections: a referral's risk assessment and interventions, sealed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:00:00

referral/v2 adds a risk (re-)assessment and intervention sections. They are case data, so they
are stored as the narrative is: one JSON document in `referrals.sections`, AES-256-GCM under the
subject's data key with the referral's id in the associated data (app/referrals/sections.py).
Existing referrals are referral/v1 and have none (NULL): nothing to seal, no keyring needed.
The downgrade drops the column, and with it the v2 sections (their referrals stay, as v2 rows
whose extra sections are gone).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('referrals', sa.Column('sections', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column('referrals', 'sections')
