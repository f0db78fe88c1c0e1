"""Training records

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 16:00:00

The courses each person has completed (app.training): agreements may require courses of their
recipients. `person_id` is no foreign key: an API client's `act` names a person the service need
not hold. The downgrade drops the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'training_records',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('course_id', sa.String(length=64), nullable=False),
        sa.Column('completed_on', sa.Date(), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=True),
        sa.Column('recorded_by', sa.String(length=64), nullable=False),
        sa.Column('recorded_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_records')),
    )
    op.create_index('ix_training_records_person_id_course_id', 'training_records', ['person_id', 'course_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_training_records_person_id_course_id', table_name='training_records')
    op.drop_table('training_records')
