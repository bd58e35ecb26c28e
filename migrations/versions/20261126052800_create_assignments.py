"""create_assignments

Revision ID: 958e21f572e6
Revises: 60fce4ecb40f
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "958e21f572e6"
down_revision: str | None = "60fce4ecb40f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the assignments table and its indexes."""
    op.create_table(
        "assignments",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("due_at", server.store.base.UTCDateTime(timezone=True), nullable=False),
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
            name=op.f("fk_assignments_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_assignments_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_created_at"), "assignments", ["created_at"])
    op.create_index(op.f("ix_assignments_created_by"), "assignments", ["created_by"])
    op.create_index(op.f("ix_assignments_group_id_due_at"), "assignments", ["group_id", "due_at"])


def downgrade() -> None:
    """Drop the assignments table."""
    op.drop_index(op.f("ix_assignments_created_at"), table_name="assignments")
    op.drop_index(op.f("ix_assignments_created_by"), table_name="assignments")
    op.drop_index(op.f("ix_assignments_group_id_due_at"), table_name="assignments")
    op.drop_table("assignments")
