"""create_assignment_reminders

Revision ID: ceaf80810551
Revises: 0b6fd6577b6f
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "ceaf80810551"
down_revision: str | None = "0b6fd6577b6f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create assignment_reminders (due-soon claims); index assignments by due_at."""
    op.create_table(
        "assignment_reminders",
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", server.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_assignment_reminders_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", "due_at", name=op.f("pk_assignment_reminders")),
    )
    op.create_index(op.f("ix_assignments_due_at"), "assignments", ["due_at"])


def downgrade() -> None:
    """Drop the claims and the index (a later upgrade reminds again what is due soon)."""
    op.drop_index(op.f("ix_assignments_due_at"), table_name="assignments")
    op.drop_table("assignment_reminders")
