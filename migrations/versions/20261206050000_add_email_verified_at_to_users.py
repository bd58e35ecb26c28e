"""add_email_verified_at_to_users

Revision ID: 913d56b27840
Revises: 3c1f0a9d2b7e
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "913d56b27840"
down_revision: str | None = "3c1f0a9d2b7e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add users.email_verified_at: when the account's address was proven (null: not yet)."""
    op.add_column(
        "users",
        sa.Column("email_verified_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Drop the column (every account reads as unverified again afterwards).

    A plain ``DROP COLUMN`` (SQLite 3.35+), not a batch table copy.
    """
    op.drop_column("users", "email_verified_at")
