"""The console: people and their server-side sessions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 13:00:00

A person signs in to the console with a password and a second factor, or through the city's
identity provider; to the API each person is a client of the same id (a row of api_clients whose
secret hash no secret matches), so the console's every read and write is the API's. Sessions are
server-side: the cookie holds a random token, console_sessions its SHA-256. The downgrade drops both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'people',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('agency_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=True),
        sa.Column('totp_sealed', sa.String(length=300), nullable=True),
        sa.Column('totp_last_step', sa.Integer(), nullable=True),
        sa.Column('locale', sa.String(length=8), nullable=True),
        sa.Column('oidc_issuer', sa.String(length=300), nullable=True),
        sa.Column('oidc_subject', sa.String(length=200), nullable=True),
        sa.Column('failed_attempts', sa.Integer(), nullable=False),
        sa.Column('locked_until', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('password_changed_at', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_people_agency_id_agencies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
        sa.UniqueConstraint('oidc_issuer', 'oidc_subject', name='uq_people_oidc'),
    )
    op.create_index(op.f('ix_people_agency_id'), 'people', ['agency_id'], unique=False)
    op.create_table(
        'console_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=True),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=64), nullable=True),
        sa.Column('locale', sa.String(length=8), nullable=True),
        sa.Column('pending', sa.JSON(), nullable=True),
        sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('signed_in_at', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_seen_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_console_sessions_person_id_people'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    )
    op.create_index(op.f('ix_console_sessions_person_id'), 'console_sessions', ['person_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_sessions_person_id'), table_name='console_sessions')
    op.drop_table('console_sessions')
    op.drop_index(op.f('ix_people_agency_id'), table_name='people')
    op.drop_table('people')
