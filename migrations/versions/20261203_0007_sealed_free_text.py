"""sealed free text: who referred, who recorded consent, why and by whom a status changed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:30:00

`referrals.referring_person`, the consent's `recorded_by` (moved out of the `consent` JSON
into a column of its own, `referrals.consent_recorded_by`) and `referral_status_changes.reason`
and `.by_person` become LargeBinary, sealed with the subject's data key exactly as the service
seals them (app/referrals/sealed.py), so that erasing the person's key shreds them too.

Existing values are sealed here, in the migration, with the keyring:

- `app.migrate.upgrade(engine, keyring=...)` hands the service's keyring over in
  `config.attributes["keyring"]` (`casebridge serve` and `casebridge db upgrade` both do);
- a plain `alembic upgrade` opens the keyring the service's settings name
  (CASEBRIDGE_KEYRING_PATH / CASEBRIDGE_KEYRING_JSON / the data directory), never creating one.

The keyring is opened only when there is text to seal or open: an empty database needs none.
With clear text and no keyring the upgrade refuses, and nothing changes, rather than leave the
text in clear.  The value of a person whose key is already destroyed (erased, or sealed off
and awaiting removal) is dropped: it belonged to the erasure.

Steps: add the sealed columns, seal row by row, drop the clear columns, rename the sealed
ones into their place.  The downgrade opens the values with the same keyring and writes them
back in clear.  On SQLite the dropped pages are zeroed (secure_delete) and the WAL is folded
in by the next checkpoint; on PostgreSQL the old row versions stay in the table files until
`VACUUM FULL referrals, referral_status_changes` (pg_dump never shows them).
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.migrate import SubjectKeys

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The associated-data contexts, frozen as this revision wrote them (app/referrals/sealed.py).
REFERRING_PERSON = "referral.referring_person"
CONSENT_RECORDED_BY = "referral.consent.recorded_by"
STEP_REASON = "referral.status_change.reason"
STEP_BY_PERSON = "referral.status_change.by_person"
BATCH = 500

_referrals = sa.table(
    'referrals',
    sa.column('id', sa.String), sa.column('subject_id', sa.String), sa.column('consent', sa.JSON),
    sa.column('referring_person', sa.String), sa.column('referring_person_clear', sa.String),
    sa.column('referring_person_sealed', sa.LargeBinary), sa.column('consent_recorded_by', sa.LargeBinary),
)
_steps = sa.table(
    'referral_status_changes',
    sa.column('id', sa.Integer), sa.column('referral_id', sa.String),
    sa.column('reason', sa.Text), sa.column('by_person', sa.String),
    sa.column('reason_clear', sa.Text), sa.column('by_person_clear', sa.String),
    sa.column('reason_sealed', sa.LargeBinary), sa.column('by_person_sealed', sa.LargeBinary),
)


def _keys(connection: sa.Connection) -> SubjectKeys:
    return SubjectKeys(connection, op.get_context().config, "0007 seals referral free text with each subject's data key and")



def _pages(connection: sa.Connection, query: sa.Select[Any], key: sa.ColumnElement[Any]) -> Iterator[Any]:
    """The query's rows in batches by key, so a large table never sits in memory at once."""
    last = None
    while True:
        page = query.order_by(key).limit(BATCH)
        rows = connection.execute(page if last is None else page.where(key > last)).all()
        yield from rows
        if len(rows) < BATCH:
            return
        last = rows[-1].id


def _seal(keys: SubjectKeys, subject_id: str, text: str | None, context: str) -> bytes | None:
    if text is None:
        return None
    key = keys.of(subject_id)
    return None if key is None else key.seal(text.encode(), context)


def _open(keys: SubjectKeys, subject_id: str, sealed: bytes | None, context: str) -> str | None:
    if sealed is None:
        return None
    key = keys.of(subject_id)
    if key is None:
        return None
    text: str = key.open(bytes(sealed), context).decode()
    return text


def _convert(
    connection: sa.Connection, keys: SubjectKeys, change: Callable[[SubjectKeys, str, Any, str], Any], *,
    person_from: str, person_to: str, reason_from: str, by_from: str, reason_to: str, by_to: str,
    consent_out: bool,
) -> None:
    """Rewrite every value from one set of columns into the other, sealing or opening."""
    r = _referrals.c
    query = sa.select(r.id, r.subject_id, r.consent, r[person_from], r.consent_recorded_by)
    for row in _pages(connection, query, r.id):
        consent = dict(row.consent or {})
        values: dict[str, Any] = {
            person_to: change(keys, row.subject_id, row._mapping[person_from], f"{REFERRING_PERSON}:{row.id}")
        }
        if consent_out:  # upgrade: recorded_by leaves the JSON for its sealed column
            recorded_by = consent.pop('recorded_by', None)
            values['consent_recorded_by'] = change(keys, row.subject_id, recorded_by, f"{CONSENT_RECORDED_BY}:{row.id}")
        else:
            consent['recorded_by'] = change(keys, row.subject_id, row.consent_recorded_by,
                                            f"{CONSENT_RECORDED_BY}:{row.id}")
        values['consent'] = consent
        connection.execute(_referrals.update().where(r.id == row.id).values(**values))
    s = _steps.c
    steps = sa.select(s.id, s.referral_id, r.subject_id, s[reason_from], s[by_from]).join(
        _referrals, r.id == s.referral_id
    )
    for row in _pages(connection, steps, s.id):
        where = f"{row.referral_id}:{row.id}"
        connection.execute(_steps.update().where(s.id == row.id).values(**{
            reason_to: change(keys, row.subject_id, row._mapping[reason_from], f"{STEP_REASON}:{where}"),
            by_to: change(keys, row.subject_id, row._mapping[by_from], f"{STEP_BY_PERSON}:{where}"),
        }))


def _replace(table: str, columns: dict[str, tuple[str, sa.types.TypeEngine[Any]]]) -> None:
    """Drop each column and rename its replacement into its place, in place.

    Never a batch (table copy) on SQLite: dropping the old `referrals` table with foreign keys
    on would cascade-delete every status change, assignment and note that refers to it.
    Both backends alter columns in place (SQLite 3.35+).
    """
    for name, (replacement, type_) in columns.items():
        op.drop_column(table, name)
        op.alter_column(table, replacement, new_column_name=name, existing_type=type_, existing_nullable=True)


def upgrade() -> None:
    op.add_column('referrals', sa.Column('referring_person_sealed', sa.LargeBinary(), nullable=True))
    op.add_column('referrals', sa.Column('consent_recorded_by', sa.LargeBinary(), nullable=True))
    op.add_column('referral_status_changes', sa.Column('reason_sealed', sa.LargeBinary(), nullable=True))
    op.add_column('referral_status_changes', sa.Column('by_person_sealed', sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    _convert(connection, _keys(connection), _seal, person_from='referring_person', person_to='referring_person_sealed',
             reason_from='reason', by_from='by_person', reason_to='reason_sealed', by_to='by_person_sealed',
             consent_out=True)
    _replace('referrals', {'referring_person': ('referring_person_sealed', sa.LargeBinary())})
    _replace('referral_status_changes', {'reason': ('reason_sealed', sa.LargeBinary()),
                                         'by_person': ('by_person_sealed', sa.LargeBinary())})


def downgrade() -> None:
    op.add_column('referrals', sa.Column('referring_person_clear', sa.String(length=200), nullable=True))
    op.add_column('referral_status_changes', sa.Column('reason_clear', sa.Text(), nullable=True))
    op.add_column('referral_status_changes', sa.Column('by_person_clear', sa.String(length=200), nullable=True))
    connection = op.get_bind()
    _convert(connection, _keys(connection), _open, person_from='referring_person', person_to='referring_person_clear',
             reason_from='reason', by_from='by_person', reason_to='reason_clear', by_to='by_person_clear',
             consent_out=False)
    op.drop_column('referrals', 'consent_recorded_by')
    _replace('referrals', {'referring_person': ('referring_person_clear', sa.String(length=200))})
    _replace('referral_status_changes', {'reason': ('reason_clear', sa.Text()),
                                         'by_person': ('by_person_clear', sa.String(length=200))})
