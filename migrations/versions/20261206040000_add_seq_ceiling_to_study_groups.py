"""add_seq_ceiling_to_study_groups

Revision ID: 3c1f0a9d2b7e
Revises: 87b434376f67
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1f0a9d2b7e"
down_revision: str | None = "87b434376f67"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Every seq the message log ever hands out for a group stays at or below its ceiling."""
    op.add_column(
        "study_groups",
        sa.Column("seq_ceiling", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Drop the ceiling (a log lost afterwards could reuse seqs again).

    A plain ``DROP COLUMN`` (SQLite 3.35+), not a batch table copy, which would lose the
    expression index on ``lower(subject)``.
    """
    op.drop_column("study_groups", "seq_ceiling")
