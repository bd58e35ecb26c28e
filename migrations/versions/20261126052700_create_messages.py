"""create_messages

Revision ID: 60fce4ecb40f
Revises: d0c99a613480
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.store.base

revision: str = "60fce4ecb40f"
down_revision: str | None = "d0c99a613480"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the messages table and its indexes."""
    op.create_table(
        "messages",
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            server.store.base.UTCDateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("edited_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", server.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_messages_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["study_groups.id"],
            name=op.f("fk_messages_group_id_study_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("group_id", "seq", name=op.f("uq_messages_group_id_seq")),
    )
    op.create_index(op.f("ix_messages_author_id"), "messages", ["author_id"])
    op.create_index(
        op.f("ix_messages_group_id_author_id_client_msg_id"),
        "messages",
        ["group_id", "author_id", "client_msg_id"],
    )


def downgrade() -> None:
    """Drop the messages table."""
    op.drop_index(op.f("ix_messages_author_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_group_id_author_id_client_msg_id"), table_name="messages")
    op.drop_table("messages")
