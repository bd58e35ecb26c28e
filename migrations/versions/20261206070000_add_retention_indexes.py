"""add_retention_indexes

The retention purge (``server/store/retention.py``) deletes, per kind, rows done with
before a cutoff. Without these indexes each of its batches scanned the whole table, once an
hour, for sessions, email tokens, webhook deliveries and read notifications: tables that only
grow. Each index holds only the rows the purge can ever want (revoked, used, finished, read),
except ``refresh_tokens.expires_at``, which every session has. ``account_tokens.expires_at``
and ``dead_letters.created_at`` were indexed already.

Revision ID: 8d4c2f1a9b37
Revises: 5b1e7d0c2a94
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d4c2f1a9b37"
down_revision: str | None = "5b1e7d0c2a94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTIAL = {
    "ix_refresh_tokens_revoked_at": ("refresh_tokens", "revoked_at", "revoked_at IS NOT NULL"),
    "ix_account_tokens_used_at": ("account_tokens", "used_at", "used_at IS NOT NULL"),
    "ix_webhook_deliveries_finished": (
        "webhook_deliveries",
        "updated_at",
        "status IN ('succeeded', 'dead')",
    ),
    "ix_notifications_read_at": ("notifications", "read_at", "read_at IS NOT NULL"),
}
"""Name: (table, column, the rows it holds)."""


def upgrade() -> None:
    """Index what each retention kind looks for."""
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])
    for name, (table, column, where) in PARTIAL.items():
        condition = sa.text(where)
        op.create_index(name, table, [column], postgresql_where=condition, sqlite_where=condition)


def downgrade() -> None:
    """Drop them (the purge scans the tables again)."""
    for name, (table, _, _) in PARTIAL.items():
        op.drop_index(name, table_name=table)
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
