"""Idempotent bulk inserts that work on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.base import Base


async def insert_skipping_conflicts(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], keys: list[str]
) -> None:
    """Insert ``rows``; those that clash with an existing row on ``keys`` are skipped.

    One cached statement executed for many rows (asyncpg's executemany on PostgreSQL): a
    multi-row ``VALUES`` built per batch would be compiled again for every batch size.
    """
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).on_conflict_do_nothing(index_elements=keys)
    connection = await session.connection()
    await connection.execute(statement, list(rows))
