"""create_notifications

Revision ID: 8d93b839931d
Revises: 5186e378af60
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "8d93b839931d"
down_revision: str | None = "5186e378af60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMAIL_PENDING = sa.text("email_status = 'pending'")


def upgrade() -> None:
    """Create notifications: one per event and recipient (unique user_id, event_key)."""
    op.create_table(
        "notifications",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("read_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=16), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_notifications_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "user_id", "event_key", name=op.f("uq_notifications_user_id_event_key")
        ),
    )
    op.create_index(
        "ix_notifications_email_pending",
        "notifications",
        ["created_at"],
        postgresql_where=EMAIL_PENDING,
        sqlite_where=EMAIL_PENDING,
    )
    op.create_index(op.f("ix_notifications_group_id"), "notifications", ["group_id"])
    op.create_index(
        op.f("ix_notifications_user_id_created_at"), "notifications", ["user_id", "created_at"]
    )


def downgrade() -> None:
    """Drop notifications (every user's list is emptied)."""
    op.drop_index(op.f("ix_notifications_user_id_created_at"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_group_id"), table_name="notifications")
    op.drop_index("ix_notifications_email_pending", table_name="notifications")
    op.drop_table("notifications")
