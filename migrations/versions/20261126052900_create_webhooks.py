"""create_webhooks

Revision ID: 7db181940d50
Revises: 958e21f572e6
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "7db181940d50"
down_revision: str | None = "958e21f572e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the webhooks table and its indexes."""
    op.create_table(
        "webhooks",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=300), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("deleted_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_webhooks_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_webhooks_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_created_at"), "webhooks", ["created_at"])
    op.create_index(op.f("ix_webhooks_created_by"), "webhooks", ["created_by"])
    op.create_index(op.f("ix_webhooks_group_id"), "webhooks", ["group_id"])


def downgrade() -> None:
    """Drop the webhooks table."""
    op.drop_index(op.f("ix_webhooks_created_at"), table_name="webhooks")
    op.drop_index(op.f("ix_webhooks_created_by"), table_name="webhooks")
    op.drop_index(op.f("ix_webhooks_group_id"), table_name="webhooks")
    op.drop_table("webhooks")
