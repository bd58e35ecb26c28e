"""add_search_trigram_indexes

Search compares ``sb_search_text(column)``: the text as typed (the HTML escaping of stored
text undone) in lower case; ``server.security.sanitize.search_form`` is the same function in
Python, registered on SQLite connections. On PostgreSQL this creates it, with ``pg_trgm``
GIN indexes on exactly that expression for message bodies and group names and descriptions,
so substring search uses an index. SQLite keeps its plain scan: nothing to do there.

Revision ID: 5b1e7d0c2a94
Revises: c3f7b5325308
Create Date: 2026-12-06
"""

from collections.abc import Sequence

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
    "ix_messages_body_trgm": ("messages", "body"),
    "ix_study_groups_name_trgm": ("study_groups", "name"),
    "ix_study_groups_description_trgm": ("study_groups", "description"),
}


def upgrade() -> None:
    """Create sb_search_text and trigram indexes on it (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(SEARCH_TEXT)
    for name, (table, column) in INDEXES.items():
        op.execute(
            f"CREATE INDEX {name} ON {table} USING gin (sb_search_text({column}) gin_trgm_ops)"
        )


def downgrade() -> None:
    """Drop the trigram indexes and sb_search_text (the extension stays: others may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS sb_search_text(text)")
