"""create_study_groups

Revision ID: adaa28207575
Revises: 7521c7e43e45
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "adaa28207575"
down_revision: str | None = "7521c7e43e45"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the study_groups table and its indexes."""
    op.create_table(
        "study_groups",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("max_members", sa.Integer(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
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
        sa.CheckConstraint(
            "max_members IS NULL OR max_members >= 2", name=op.f("ck_study_groups_max_members_min")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_study_groups_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_groups")),
    )
    op.create_index(op.f("ix_study_groups_created_at"), "study_groups", ["created_at"])
    op.create_index(op.f("ix_study_groups_member_count"), "study_groups", ["member_count"])
    op.create_index(op.f("ix_study_groups_name"), "study_groups", ["name"])
    op.create_index(op.f("ix_study_groups_owner_id"), "study_groups", ["owner_id"])
    op.create_index(op.f("ix_study_groups_visibility"), "study_groups", ["visibility"])
    op.create_index("ix_study_groups_lower_subject", "study_groups", [sa.text("lower(subject)")])


def downgrade() -> None:
    """Drop the study_groups table."""
    op.drop_index("ix_study_groups_lower_subject", table_name="study_groups")
    op.drop_index(op.f("ix_study_groups_created_at"), table_name="study_groups")
    op.drop_index(op.f("ix_study_groups_member_count"), table_name="study_groups")
    op.drop_index(op.f("ix_study_groups_name"), table_name="study_groups")
    op.drop_index(op.f("ix_study_groups_owner_id"), table_name="study_groups")
    op.drop_index(op.f("ix_study_groups_visibility"), table_name="study_groups")
    op.drop_table("study_groups")
