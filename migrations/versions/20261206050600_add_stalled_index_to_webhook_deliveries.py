"""add_stalled_index_to_webhook_deliveries

Revision ID: 15337c2e857d
Revises: ceaf80810551
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "15337c2e857d"
down_revision: str | None = "ceaf80810551"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STALLED = sa.text("status IN ('pending', 'failed')")


def upgrade() -> None:
    """Index the deliveries the sweep re-queues: (updated_at) WHERE status is pending or failed."""
    op.create_index(
        "ix_webhook_deliveries_stalled",
        "webhook_deliveries",
        ["updated_at"],
        postgresql_where=STALLED,
        sqlite_where=STALLED,
    )


def downgrade() -> None:
    """Drop the partial index (the sweep scans the table again)."""
    op.drop_index("ix_webhook_deliveries_stalled", table_name="webhook_deliveries")
