"""create_notification_events

Revision ID: 5186e378af60
Revises: 2a5763566a02
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "5186e378af60"
down_revision: str | None = "2a5763566a02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPROCESSED = sa.text("processed_at IS NULL")


def upgrade() -> None:
    """Create notification_events: domain events waiting for their fan-out (an outbox)."""
    op.create_table(
        "notification_events",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("processed_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_notification_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_notification_events_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_events")),
    )
    op.create_index(op.f("ix_notification_events_actor_id"), "notification_events", ["actor_id"])
    op.create_index(op.f("ix_notification_events_group_id"), "notification_events", ["group_id"])
    op.create_index(
        "ix_notification_events_unprocessed",
        "notification_events",
        ["created_at"],
        postgresql_where=UNPROCESSED,
        sqlite_where=UNPROCESSED,
    )


def downgrade() -> None:
    """Drop notification_events (events not yet fanned out are lost)."""
    op.drop_index("ix_notification_events_unprocessed", table_name="notification_events")
    op.drop_index(op.f("ix_notification_events_group_id"), table_name="notification_events")
    op.drop_index(op.f("ix_notification_events_actor_id"), table_name="notification_events")
    op.drop_table("notification_events")
