"""sealed hold reasons: a case hold's reasons are sealed with the subject's data key

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00

A legal hold on a referral says why the person's records must be kept ("court case about
<name>"): its `reason` and `lift_reason` move into `sealed_reason` and `sealed_lift_reason`,
AES-256-GCM under the referral's subject's data key with the hold's id in the associated data,
exactly as app/retention/holds.py seals them, so that erasing the person shreds them.  An
agency-wide hold names an agency, never a person: its reasons stay the operator's text, in
clear, in `reason` and `lift_reason` (now nullable: a case hold leaves them empty).

Existing case-hold reasons are sealed here with the keyring, as 0007 does: the one
`app.migrate.upgrade` hands over in `config.attributes["keyring"]`, or the one the service's
settings name (never created).  The keyring is opened only when there is text to seal or open.
The reason of a hold whose person's key is already destroyed, or whose referral is gone, is
dropped: it belonged to the erasure.  The downgrade opens the values back into clear text.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.migrate import SubjectKeys

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The associated-data contexts, frozen as this revision wrote them (app/retention/holds.py).
REASON = "legal_hold.reason"
LIFT_REASON = "legal_hold.lift_reason"
ERASED = ""  # what a downgrade writes for a required reason whose key is gone

_holds = sa.table(
    'legal_holds',
    sa.column('id', sa.String), sa.column('scope', sa.String), sa.column('referral_id', sa.String),
    sa.column('reason', sa.Text), sa.column('lift_reason', sa.Text),
    sa.column('sealed_reason', sa.LargeBinary), sa.column('sealed_lift_reason', sa.LargeBinary),
)
_referrals = sa.table('referrals', sa.column('id', sa.String), sa.column('subject_id', sa.String))


def _keys(connection: sa.Connection) -> SubjectKeys:
    return SubjectKeys(connection, op.get_context().config, "0010 seals legal-hold reasons with each subject's data key and")



def _seal(keys: SubjectKeys, subject_id: str | None, text: Any, context: str) -> bytes | None:
    if text is None:
        return None
    key = keys.of(subject_id)
    return None if key is None else key.seal(str(text).encode(), context)


def _open(keys: SubjectKeys, subject_id: str | None, sealed: Any, context: str) -> str | None:
    if sealed is None:
        return None
    key = keys.of(subject_id)
    if key is None:
        return None
    text: str = key.open(bytes(sealed), context).decode()
    return text


def _case_holds(connection: sa.Connection) -> list[Any]:
    h, r = _holds.c, _referrals.c
    query = (
        sa.select(h.id, h.reason, h.lift_reason, h.sealed_reason, h.sealed_lift_reason, r.subject_id)
        .select_from(_holds.outerjoin(_referrals, r.id == h.referral_id))
        .where(h.scope == 'referral')
        .order_by(h.id)
    )
    return list(connection.execute(query).all())


def _convert(connection: sa.Connection, change: Callable[[SubjectKeys, str | None, Any, str], Any], *,
             reason_from: str, lift_from: str, reason_to: str, lift_to: str) -> None:
    keys = _keys(connection)
    h = _holds.c
    for row in _case_holds(connection):
        connection.execute(_holds.update().where(h.id == row.id).values(**{
            reason_to: change(keys, row.subject_id, row._mapping[reason_from], f"{REASON}:{row.id}"),
            lift_to: change(keys, row.subject_id, row._mapping[lift_from], f"{LIFT_REASON}:{row.id}"),
            reason_from: None,
            lift_from: None,
        }))


def upgrade() -> None:
    with op.batch_alter_table('legal_holds') as batch_op:
        batch_op.add_column(sa.Column('sealed_reason', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('sealed_lift_reason', sa.LargeBinary(), nullable=True))
        batch_op.alter_column('reason', existing_type=sa.Text(), nullable=True)
    _convert(op.get_bind(), _seal, reason_from='reason', lift_from='lift_reason',
             reason_to='sealed_reason', lift_to='sealed_lift_reason')


def downgrade() -> None:
    connection = op.get_bind()
    _convert(connection, _open, reason_from='sealed_reason', lift_from='sealed_lift_reason',
             reason_to='reason', lift_to='lift_reason')
    h = _holds.c
    connection.execute(_holds.update().where(h.reason.is_(None)).values(reason=ERASED))
    with op.batch_alter_table('legal_holds') as batch_op:
        batch_op.alter_column('reason', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('sealed_lift_reason')
        batch_op.drop_column('sealed_reason')
