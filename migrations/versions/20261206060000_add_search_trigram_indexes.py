"""add_search_trigram_indexes

Search compares ``sb_search_text(column)``: the text as typed (the HTML escaping of stored
text undone) in lower case; ``server.security.sanitize.search_form`` is the same function in
Python, registered on SQLite connections. On PostgreSQL this creates it, with ``pg_trgm``
GIN indexes on exactly that expression for message bodies (with ``group_id`` first, through
``btree_gin``: message search is always within a group) and group names and descriptions, so
substring search uses an index. SQLite keeps its plain scan.

On both, a partial index of live messages, ``(group_id, seq) WHERE deleted_at IS NULL``,
serves history pages and lets their totals be counted from the index alone.

Revision ID: 5b1e7d0c2a94
Revises: c3f7b5325308
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e7d0c2a94"
down_revision: str | None = "c3f7b5325308"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TEXT = """
CREATE OR REPLACE FUNCTION sb_search_text(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT lower(replace(replace(replace(replace(replace(
    value, '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&#x27;', ''''), '&amp;', '&'))
$$
"""
INDEXES = {
    "ix_messages_group_id_body_trgm": ("messages", "group_id, sb_search_text(body) gin_trgm_ops"),
    "ix_study_groups_name_trgm": ("study_groups", "sb_search_text(name) gin_trgm_ops"),
    "ix_study_groups_description_trgm": (
        "study_groups",
        "sb_search_text(description) gin_trgm_ops",
    ),
}
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    """Index live messages; create sb_search_text and trigram indexes on it (PostgreSQL)."""
    op.create_index(
        "ix_messages_group_id_seq_live",
        "messages",
        ["group_id", "seq"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute(SEARCH_TEXT)
    for name, (table, columns) in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({columns})")


def downgrade() -> None:
    """Drop the indexes and sb_search_text (the extensions stay: others may use them)."""
    op.drop_index("ix_messages_group_id_seq_live", table_name="messages")
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS sb_search_text(text)")
