"""The case conference: meetings, agenda items, minutes, actions and clock notices

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 06:00:00

A network's chair schedules meetings (POST /v1/networks/{id}/meetings); each agenda item names a
referral and the agencies invited to it; minutes are appended per item (sealed under the
person's data key), corrections after the meeting closes. Actions belong to a referral (and
optionally to the item that created it). Clock notices are what the scheduled clock job found
due, for the change feed. Every row that names a referral goes with it (ON DELETE CASCADE, and
the purge). The downgrade drops the five tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'meetings',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('network_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('scheduled_for', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_by_agency', sa.String(length=64), nullable=False),
        sa.Column('created_by_client', sa.String(length=64), nullable=False),
        sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('closed_at', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_meetings_network_id', 'meetings', ['network_id'])
    op.create_table(
        'meeting_items',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('meeting_id', sa.String(length=40), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('invited', sa.JSON(), nullable=False),
        sa.Column('attended', sa.JSON(), nullable=True),
        sa.Column('decision', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('meeting_id', 'number', name='uq_meeting_items_number'),
        sa.UniqueConstraint('meeting_id', 'referral_id', name='uq_meeting_items_referral'),
    )
    op.create_index('ix_meeting_items_meeting_id', 'meeting_items', ['meeting_id'])
    op.create_index('ix_meeting_items_referral_id', 'meeting_items', ['referral_id'])
    op.create_table(
        'meeting_minutes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('text', sa.LargeBinary(), nullable=True),
        sa.Column('decision', sa.String(length=40), nullable=True),
        sa.Column('by_agency', sa.String(length=64), nullable=False),
        sa.Column('by_client', sa.String(length=64), nullable=False),
        sa.Column('at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['meeting_items.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_meeting_minutes_item_id', 'meeting_minutes', ['item_id'])
    op.create_index('ix_meeting_minutes_referral_id', 'meeting_minutes', ['referral_id'])
    op.create_table(
        'case_actions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('network_id', sa.String(length=64), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=True),
        sa.Column('description', sa.LargeBinary(), nullable=True),
        sa.Column('owner_agency', sa.String(length=64), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('completion_note', sa.LargeBinary(), nullable=True),
        sa.Column('created_by_agency', sa.String(length=64), nullable=False),
        sa.Column('created_by_client', sa.String(length=64), nullable=False),
        sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['meeting_items.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_actions_referral_id', 'case_actions', ['referral_id'])
    op.create_index('ix_case_actions_network_id', 'case_actions', ['network_id'])
    op.create_index('ix_case_actions_item_id', 'case_actions', ['item_id'])
    op.create_index('ix_case_actions_owner_agency', 'case_actions', ['owner_agency'])
    op.create_index('ix_case_actions_status', 'case_actions', ['status'])
    op.create_table(
        'clock_notices',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('network_id', sa.String(length=64), nullable=False),
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('due_since', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('referral_id', 'kind', 'due_since', name='uq_clock_notices_due'),
    )
    op.create_index('ix_clock_notices_network_id', 'clock_notices', ['network_id'])
    op.create_index('ix_clock_notices_referral_id', 'clock_notices', ['referral_id'])


def downgrade() -> None:
    op.drop_table('clock_notices')
    op.drop_table('case_actions')
    op.drop_table('meeting_minutes')
    op.drop_table('meeting_items')
    op.drop_table('meetings')
