"""create_notification_settings

Revision ID: 0b6fd6577b6f
Revises: 8d93b839931d
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "0b6fd6577b6f"
down_revision: str | None = "8d93b839931d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create notification_settings: each user's email choices that differ from the defaults."""
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.JSON(), nullable=False),
        sa.Column(
            "updated_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
    )


def downgrade() -> None:
    """Drop notification_settings (everyone is back on the defaults)."""
    op.drop_table("notification_settings")
