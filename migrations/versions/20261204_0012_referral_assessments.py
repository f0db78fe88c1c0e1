"""Re-assessments of a referral: who, when, why (sealed), and the assessed values after each

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 02:40:00

A referral's risk level, concerns, vulnerability and protective factors and intervention type
can be re-assessed (POST /v1/referrals/{id}/assessments). The referral keeps the current values;
each re-assessment is a row here, numbered per referral, its reason and acting person sealed
under the subject's data key. Rows go with their referral (ON DELETE CASCADE, and the purge).
The downgrade drops the history; the referrals keep their current values.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'referral_assessments',
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('risk_level', sa.String(length=40), nullable=False),
        sa.Column('concerns', sa.JSON(), nullable=False),
        sa.Column('vulnerability_factors', sa.JSON(), nullable=False),
        sa.Column('protective_factors', sa.JSON(), nullable=False),
        sa.Column('intervention_type', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.LargeBinary(), nullable=True),
        sa.Column('by_agency', sa.String(length=64), nullable=False),
        sa.Column('by_client', sa.String(length=64), nullable=False),
        sa.Column('by_person', sa.LargeBinary(), nullable=True),
        sa.Column('at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('referral_id', 'number'),
    )


def downgrade() -> None:
    op.drop_table('referral_assessments')
