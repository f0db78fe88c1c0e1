"""linked submissions: each referral keeps the subject part it submitted itself

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:30:00

Before this, a referral rendered its subject from the person's merged identity and from the
subject's age band and district, which every linked referral updated: a referral linked by an
identifier showed what other agencies had said. Now each referral holds its own part:
`subject_submission` (sealed under the person's data key, bound to the referral's id, as
app/subjects/submissions.py seals it), `subject_age_band`, `subject_district`, and
`link_conflicts`; the subject's age band and district columns go.

What each agency said alone was never kept, so an existing referral's part is the person's
merged identity as it stands (what it showed until now), and its age band and district are
the subject's. Sealing needs the keyring, handed over as in 0007:
`app.migrate.upgrade(engine, keyring=...)` (`casebridge serve`, `casebridge db upgrade`), or,
for a plain `alembic upgrade`, the keyring the service's settings name (never created here).
It is opened only when there is something to seal: an empty database needs none. A person
whose key is already destroyed (erased, awaiting removal) gets no part: nothing is left to read.

Columns are added and dropped in place (SQLite 3.35+), never by a batch table copy: dropping
the old `subjects` table with foreign keys on is refused (referrals point at it).
The downgrade needs no key: it drops the sealed parts (the merged identity stays).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The associated-data contexts, frozen as this revision wrote them (app/subjects/*).
IDENTITY_CONTEXT = "subject.identity"
SUBMISSION_CONTEXT = "referral.subject"
BATCH = 500

_referrals = sa.table(
    'referrals',
    sa.column('id', sa.String), sa.column('subject_id', sa.String),
    sa.column('subject_submission', sa.LargeBinary),
)
_subjects = sa.table(
    'subjects',
    sa.column('id', sa.String), sa.column('wrapped_key', sa.LargeBinary), sa.column('kek_id', sa.String),
    sa.column('identity', sa.LargeBinary),
)


def _keyring() -> Any:
    from app.migrate import migration_keyring

    return migration_keyring(op.get_context().config, "0009 seals each referral's subject part with the person's data key and")


class _Parts:
    """Seals a person's merged identity for each of their referrals; one unwrap per person."""

    def __init__(self) -> None:
        self.envelope: Any = None
        self.person: tuple[str, Any, bytes] | None = None

    def sealed_for(self, row: Any) -> bytes | None:
        """`row`: a referral's id and subject_id with its person's wrapped_key, kek_id, identity."""
        if row.wrapped_key is None or row.kek_id is None or row.identity is None:
            return None  # erased: the key is gone, and the identity with it
        if self.person is None or self.person[0] != row.subject_id:
            self.person = (row.subject_id, *self._open(row))
        _, key, identity = self.person
        sealed: bytes = key.seal(identity, f"{SUBMISSION_CONTEXT}:{row.id}")
        return sealed

    def _open(self, row: Any) -> tuple[Any, bytes]:
        from app.crypto.aead import DecryptionError
        from app.crypto.envelope import Envelope, WrappedKey

        if self.envelope is None:
            self.envelope = Envelope(_keyring())
        try:
            key = self.envelope.unwrap(row.subject_id, WrappedKey(row.kek_id, bytes(row.wrapped_key)))
            return key, key.open(bytes(row.identity), IDENTITY_CONTEXT)
        except DecryptionError:
            raise RuntimeError(
                f"0009 cannot open the identity of subject {row.subject_id}: is this the service's keyring?"
            ) from None


def _pages(connection: sa.Connection) -> Iterator[Any]:
    """Every referral with its person's sealed columns, by person, in batches."""
    r, s = _referrals.c, _subjects.c
    query = (
        sa.select(r.id, r.subject_id, s.wrapped_key, s.kek_id, s.identity)
        .join(_subjects, s.id == r.subject_id)
    )
    last: tuple[str, str] | None = None
    while True:
        page = query.order_by(r.subject_id, r.id).limit(BATCH)
        if last is not None:
            page = page.where(sa.tuple_(r.subject_id, r.id) > sa.tuple_(*last))
        rows = connection.execute(page).all()
        yield from rows
        if len(rows) < BATCH:
            return
        last = (rows[-1].subject_id, rows[-1].id)


def upgrade() -> None:
    op.add_column('referrals', sa.Column('subject_submission', sa.LargeBinary(), nullable=True))
    op.add_column('referrals', sa.Column('subject_age_band', sa.String(length=20), nullable=True))
    op.add_column('referrals', sa.Column('subject_district', sa.String(length=100), nullable=True))
    op.add_column('referrals', sa.Column('link_conflicts', sa.JSON(), nullable=True))
    op.execute(sa.text(
        "UPDATE referrals SET"
        " subject_age_band = (SELECT s.age_band FROM subjects s WHERE s.id = referrals.subject_id),"
        " subject_district = (SELECT s.district FROM subjects s WHERE s.id = referrals.subject_id)"
    ))
    connection = op.get_bind()
    parts = _Parts()
    for row in _pages(connection):
        sealed = parts.sealed_for(row)
        if sealed is not None:
            connection.execute(
                _referrals.update().where(_referrals.c.id == row.id).values(subject_submission=sealed)
            )
    op.drop_index(op.f('ix_subjects_district'), table_name='subjects')
    op.drop_column('subjects', 'district')
    op.drop_column('subjects', 'age_band')


def downgrade() -> None:
    op.add_column('subjects', sa.Column('age_band', sa.String(length=20), nullable=True))
    op.add_column('subjects', sa.Column('district', sa.String(length=100), nullable=True))
    op.create_index(op.f('ix_subjects_district'), 'subjects', ['district'], unique=False)
    # The person's values were the latest any referral gave: take the latest referral's.
    for column in ('age_band', 'district'):  # fixed names, no input
        op.execute(sa.text(
            f"UPDATE subjects SET {column} = (SELECT r.subject_{column} FROM referrals r"  # noqa: S608
            f" WHERE r.subject_id = subjects.id AND r.subject_{column} IS NOT NULL"
            " ORDER BY r.created_at DESC, r.id DESC LIMIT 1)"
        ))
    op.drop_column('referrals', 'link_conflicts')
    op.drop_column('referrals', 'subject_district')
    op.drop_column('referrals', 'subject_age_band')
    op.drop_column('referrals', 'subject_submission')
