"""Training networks (no schema change)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 16:00:00

A revision of the chain that changes nothing, on purpose. A training network (issue 17, part 6) needs no
table or column: whether a network is one is declared in its file (`training: true`, app/policy/documents.py),
so every agency, referral and log entry is training or not through the network it belongs to
(app/policy/training.py), and a training referral's identifiers are kept under the `training:` system, whose
keyed digests never equal a real one's (app/referrals/service.py) — no flag on `agencies` or `subjects` to keep
in step. The revision stays so that the chain's numbering matches the issue's parts.
"""

from collections.abc import Sequence

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing: see the module's docstring."""


def downgrade() -> None:
    """Nothing: see the module's docstring."""
