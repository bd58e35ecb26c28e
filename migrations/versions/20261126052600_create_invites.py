"""create_invites

Revision ID: d0c99a613480
Revises: 6eac712d9926
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "d0c99a613480"
down_revision: str | None = "6eac712d9926"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the invites table and its indexes."""
    op.create_table(
        "invites",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("inviter_id", sa.Uuid(), nullable=True),
        sa.Column("invitee_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", server.store.base.UTCDateTime(timezone=True), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_invites_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invitee_id"],
            ["users.id"],
            name=op.f("fk_invites_invitee_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["users.id"],
            name=op.f("fk_invites_inviter_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
    )
    op.create_index(op.f("ix_invites_created_at"), "invites", ["created_at"])
    op.create_index(op.f("ix_invites_group_id"), "invites", ["group_id"])
    op.create_index(op.f("ix_invites_invitee_id_status"), "invites", ["invitee_id", "status"])
    op.create_index(op.f("ix_invites_inviter_id"), "invites", ["inviter_id"])


def downgrade() -> None:
    """Drop the invites table."""
    op.drop_index(op.f("ix_invites_created_at"), table_name="invites")
    op.drop_index(op.f("ix_invites_group_id"), table_name="invites")
    op.drop_index(op.f("ix_invites_invitee_id_status"), table_name="invites")
    op.drop_index(op.f("ix_invites_inviter_id"), table_name="invites")
    op.drop_table("invites")
