"""Code-of-conduct acceptances

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 16:00:00

A person accepts the current version of the code of conduct of every network their agency is a member
of before the console shows any case data; each acceptance (network, version, the hash of the texts,
the language shown) is a row of conduct_acceptances, and an entry of the audit log. The downgrade drops
the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'conduct_acceptances',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('network_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('accepted_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_conduct_acceptances_person_id_people'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_conduct_acceptances')),
        sa.UniqueConstraint('person_id', 'network_id', 'version', 'content_hash',
                            name='uq_conduct_acceptances_code'),
    )
    op.create_index(op.f('ix_conduct_acceptances_person_id'), 'conduct_acceptances', ['person_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_conduct_acceptances_person_id'), table_name='conduct_acceptances')
    op.drop_table('conduct_acceptances')
