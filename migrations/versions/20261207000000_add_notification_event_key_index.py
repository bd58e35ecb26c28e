"""add_notification_event_key_index

Editing or deleting a message, and editing or deleting an assignment, now revise or delete
the notifications that copy it (``server/store/notifications.py``). They find them by
``event_key`` across recipients; the unique ``(user_id, event_key)`` index leads with the
user, so each edit would scan the table. ``text_pattern_ops`` on PostgreSQL serves the
prefix match of a subject's reminders (``assignment.due_soon/<id>/%``) as well as equality.

Revision ID: 7f3b9e2d4c61
Revises: 2e7a9c4d6b15
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7f3b9e2d4c61"
down_revision: str | None = "2e7a9c4d6b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index notifications by their subject's key."""
    op.create_index(
        "ix_notifications_event_key",
        "notifications",
        ["event_key"],
        postgresql_ops={"event_key": "text_pattern_ops"},
    )


def downgrade() -> None:
    """Drop it (edits scan the notifications again)."""
    op.drop_index("ix_notifications_event_key", table_name="notifications")
