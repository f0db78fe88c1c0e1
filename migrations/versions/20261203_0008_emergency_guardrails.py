"""emergency guardrails: revocation, sealed finding notes, feed entries, flagged agencies

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:30:00

- `emergency_grants` gains `revoked_at` / `revoked_by` (an `unjustified` finding ends a grant at
  once), `finding_note` (the auditor's free text, sealed with the subject's data key), and an
  index on (agency_id, granted_at) for the daily cap. `finding` becomes a controlled code
  (`justified` | `unjustified`); the column stays Text, so SQLite needs no table copy.
- `emergency_notices`: the change feed's entries telling a referral's owner agency and its
  network's coordinator that an agency broke the glass (or that the grant was revoked).
- `emergency_agency_flags`: agencies an `unjustified` finding flagged, until an auditor clears them.

Findings written before this revision were free text in clear. Each is sealed into
`finding_note` (with the keyring, as 0007 does: handed over by `casebridge db upgrade`, or the
one the settings name; opened only when there is such a row). Its code: `unjustified` when the
text says "unjustified" or "not justified" — the grant is then revoked as of its review and its
agency flagged — else the grant returns to the review queue (reviewed_at cleared) for an auditor
to give a code; the old text stays readable to that auditor as the note. A text whose person's
key is already destroyed is dropped with the erasure. The downgrade writes notes back into
`finding` in clear (code first) and drops the rest.
"""

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.migrate import SubjectKeys

import app.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The associated-data context, frozen as this revision wrote it (app/emergency/service.py).
FINDING_CONTEXT = "emergency.finding"
CODES = ('justified', 'unjustified')

_grants = sa.table(
    'emergency_grants',
    sa.column('id', sa.String), sa.column('referral_id', sa.String), sa.column('agency_id', sa.String),
    sa.column('reviewed_at', app.db.UTCDateTime()), sa.column('reviewed_by', sa.String),
    sa.column('finding', sa.Text), sa.column('finding_note', sa.LargeBinary),
    sa.column('revoked_at', app.db.UTCDateTime()), sa.column('revoked_by', sa.String),
)
_referrals = sa.table(
    'referrals', sa.column('id', sa.String), sa.column('subject_id', sa.String), sa.column('network_id', sa.String),
)
_flags = sa.table(
    'emergency_agency_flags',
    sa.column('id', sa.String), sa.column('agency_id', sa.String), sa.column('network_id', sa.String),
    sa.column('grant_id', sa.String), sa.column('flagged_at', app.db.UTCDateTime()),
    sa.column('flagged_by', sa.String),
)



def _keys(connection: sa.Connection) -> SubjectKeys:
    return SubjectKeys(connection, op.get_context().config, "0008 seals legacy emergency findings with each subject's data key and")


def _legacy_rows(connection: sa.Connection, where: sa.ColumnElement[bool]) -> list[Any]:
    g, r = _grants.c, _referrals.c
    query = (
        sa.select(g.id, g.agency_id, g.reviewed_at, g.reviewed_by, g.finding, g.finding_note, r.subject_id,
                  r.network_id)
        .join(_referrals, r.id == g.referral_id)
        .where(where)
        .order_by(g.id)
    )
    return list(connection.execute(query))


def _seal_legacy_findings(connection: sa.Connection) -> None:
    g = _grants.c
    keys = _keys(connection)
    for row in _legacy_rows(connection, sa.and_(g.finding.is_not(None), g.finding.not_in(CODES))):
        key = keys.of(row.subject_id)
        note = None if key is None else key.seal(row.finding.encode(), f"{FINDING_CONTEXT}:{row.id}")
        text = row.finding.casefold()
        if "unjustified" in text or "not justified" in text:
            values = {'finding': 'unjustified', 'finding_note': note, 'revoked_at': row.reviewed_at,
                      'revoked_by': row.reviewed_by}
            connection.execute(_flags.insert().values(
                id="flg_" + secrets.token_urlsafe(12), agency_id=row.agency_id, network_id=row.network_id,
                grant_id=row.id, flagged_at=row.reviewed_at, flagged_by=row.reviewed_by or "migration-0008",
            ))
        else:
            values = {'finding': None, 'finding_note': note, 'reviewed_at': None, 'reviewed_by': None}
        connection.execute(_grants.update().where(g.id == row.id).values(**values))


def _open_notes(connection: sa.Connection) -> None:
    g = _grants.c
    keys = _keys(connection)
    for row in _legacy_rows(connection, g.finding_note.is_not(None)):
        key = keys.of(row.subject_id)
        if key is None:
            continue
        note = key.open(bytes(row.finding_note), f"{FINDING_CONTEXT}:{row.id}").decode()
        finding = f"{row.finding}: {note}" if row.finding else note
        connection.execute(_grants.update().where(g.id == row.id).values(finding=finding))


def upgrade() -> None:
    op.add_column('emergency_grants', sa.Column('finding_note', sa.LargeBinary(), nullable=True))
    op.add_column('emergency_grants', sa.Column('revoked_at', app.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column('emergency_grants', sa.Column('revoked_by', sa.String(length=64), nullable=True))
    op.create_index('ix_emergency_grants_agency_id_granted_at', 'emergency_grants', ['agency_id', 'granted_at'],
                    unique=False)
    op.create_table(
        'emergency_agency_flags',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('agency_id', sa.String(length=64), nullable=False),
        sa.Column('network_id', sa.String(length=64), nullable=False),
        sa.Column('grant_id', sa.String(length=40), nullable=False),
        sa.Column('flagged_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('flagged_by', sa.String(length=64), nullable=False),
        sa.Column('cleared_at', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('cleared_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'],
                                name=op.f('fk_emergency_agency_flags_agency_id_agencies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_agency_flags')),
    )
    op.create_index(op.f('ix_emergency_agency_flags_agency_id'), 'emergency_agency_flags', ['agency_id'],
                    unique=False)
    op.create_table(
        'emergency_notices',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('referral_id', sa.String(length=40), nullable=False),
        sa.Column('grant_id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('agency_id', sa.String(length=64), nullable=False),
        sa.Column('by_agency', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('expires_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['emergency_grants.id'],
                                name=op.f('fk_emergency_notices_grant_id_emergency_grants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_emergency_notices_referral_id_referrals'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_notices')),
    )
    op.create_index(op.f('ix_emergency_notices_grant_id'), 'emergency_notices', ['grant_id'], unique=False)
    op.create_index(op.f('ix_emergency_notices_referral_id'), 'emergency_notices', ['referral_id'], unique=False)
    _seal_legacy_findings(op.get_bind())


def downgrade() -> None:
    _open_notes(op.get_bind())
    op.drop_index(op.f('ix_emergency_notices_referral_id'), table_name='emergency_notices')
    op.drop_index(op.f('ix_emergency_notices_grant_id'), table_name='emergency_notices')
    op.drop_table('emergency_notices')
    op.drop_index(op.f('ix_emergency_agency_flags_agency_id'), table_name='emergency_agency_flags')
    op.drop_table('emergency_agency_flags')
    op.drop_index('ix_emergency_grants_agency_id_granted_at', table_name='emergency_grants')
    # In place (SQLite 3.35+), never a table copy.
    op.drop_column('emergency_grants', 'revoked_by')
    op.drop_column('emergency_grants', 'revoked_at')
    op.drop_column('emergency_grants', 'finding_note')
