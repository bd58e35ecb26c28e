"""Readiness knows a database its release step did not migrate (or left behind)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from server.store.db import Database, create_database
from server.store.schema import SchemaBehind, SchemaCheck
from tests.fixtures.processes import migrate

OLDER = "c3f7b5325308"  # create_dead_letters: a revision this code knows, before its head


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite database migrated to this code's head."""
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrate({"DATABASE_URL": url})
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}", pool_min=1, pool_max=1)
    try:
        yield db
    finally:
        await db.dispose()


async def _set_revision(db: Database, revision: str | None) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM alembic_version"))
        if revision is not None:
            await conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})


async def test_the_head_is_ready(database: Database) -> None:
    """Migrated by the release step: nothing to say."""
    await SchemaCheck(database)()


async def test_an_older_revision_is_not_ready(database: Database) -> None:
    """Code newer than its schema would answer 500s: readiness says schema."""
    await _set_revision(database, OLDER)
    with pytest.raises(SchemaBehind, match=f"the schema is at {OLDER}"):
        await SchemaCheck(database)()


async def test_a_newer_revision_than_this_code_knows_is_ready(database: Database) -> None:
    """The previous release on the next one's schema (rolling deploy, code rollback)."""
    await _set_revision(database, "0123456789ab")
    await SchemaCheck(database)()


async def test_no_revision_at_all_is_not_ready(database: Database) -> None:
    """An emptied alembic_version: never migrated, as far as anyone can tell."""
    await _set_revision(database, None)
    with pytest.raises(SchemaBehind, match="never migrated"):
        await SchemaCheck(database)()


async def test_a_database_never_migrated_is_not_ready(tmp_path: Path) -> None:
    """No alembic_version table: the check fails (readiness reports schema down)."""
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}", pool_min=1, pool_max=1)
    try:
        with pytest.raises(Exception, match="alembic_version"):
            await SchemaCheck(db)()
    finally:
        await db.dispose()


async def test_code_shipped_without_migrations_does_not_check(tmp_path: Path) -> None:
    """Nothing to compare with: the check passes (readiness cannot know)."""
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}", pool_min=1, pool_max=1)
    try:
        await SchemaCheck(db, migrations=tmp_path / "none")()
    finally:
        await db.dispose()
