"""The agency a training record counts for

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 20:00:00

A completion counts only for a caller of the agency the person was of when it was recorded: an API
client names the person it acts for (`act`), and a client of another agency naming a trained person
must not borrow their training. Existing records take the agency of the console person or API
client of that id; a record of a person the service does not know keeps none and counts for
nobody until it is recorded again (docs/upgrades.md). The downgrade drops the column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('training_records', sa.Column('agency_id', sa.String(length=64), nullable=True))
    for source in ('people', 'api_clients'):
        op.execute(
            f"UPDATE training_records SET agency_id = (SELECT {source}.agency_id FROM {source}"
            f" WHERE {source}.id = training_records.person_id) WHERE agency_id IS NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table('training_records') as batch:
        batch.drop_column('agency_id')
