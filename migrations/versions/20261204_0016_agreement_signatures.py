"""Agreement versions and their signatures

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:00:00

An agreement version is proposed when first loaded and decides nothing until its parties (or the
signatories it names) have signed its text: agreement_versions keeps each version's text and state
(proposed, in_force, superseded), so the last signed version can be rebuilt after a restart while
the file holds a newer one; agreement_signatures keeps who signed which text (its content hash),
when and how. The downgrade drops both: on an older release every loaded agreement is in force.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'agreement_versions',
        sa.Column('agreement_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('source_text', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=500), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('first_loaded_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('activated_at', app.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('agreement_id', 'version', name=op.f('pk_agreement_versions')),
    )
    op.create_table(
        'agreement_signatures',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('agreement_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('agency_id', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('signed_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('via', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['agreement_id', 'version'],
                                ['agreement_versions.agreement_id', 'agreement_versions.version'],
                                name=op.f('fk_agreement_signatures_agreement_id_agreement_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_signatures')),
        sa.UniqueConstraint('agreement_id', 'version', 'content_hash', 'agency_id', 'person_id',
                            name='uq_agreement_signatures_signer'),
    )
    op.create_index(op.f('ix_agreement_signatures_agreement_id'), 'agreement_signatures', ['agreement_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_agreement_signatures_agreement_id'), table_name='agreement_signatures')
    op.drop_table('agreement_signatures')
    op.drop_table('agreement_versions')
