"""create_pending_erasures

An account's erasure leaves copies outside PostgreSQL (Redis keys, the message log's recovery
windows, the nodes' caches). The erasure's transaction now records them here, and the row is
deleted once they are reached; a sweep retries rows that Redis being away left behind.

Revision ID: 2e7a9c4d6b15
Revises: 8d4c2f1a9b37
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "2e7a9c4d6b15"
down_revision: str | None = "8d4c2f1a9b37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create pending_erasures: erased accounts whose copies outside the database remain."""
    op.create_table(
        "pending_erasures",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("group_ids", sa.JSON(), nullable=False),
        sa.Column("deleted_at", server.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pending_erasures")),
    )
    op.create_index(op.f("ix_pending_erasures_created_at"), "pending_erasures", ["created_at"])


def downgrade() -> None:
    """Drop pending_erasures (copies a failed erasure left behind are no longer retried)."""
    op.drop_index(op.f("ix_pending_erasures_created_at"), table_name="pending_erasures")
    op.drop_table("pending_erasures")
