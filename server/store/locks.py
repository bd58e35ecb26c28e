"""Row locks that hold on both backends.

PostgreSQL takes ``SELECT ... FOR UPDATE`` row locks. SQLite ignores ``FOR UPDATE``, and its
driver begins a transaction only at the first write, so two requests could each read a row,
decide on it (a free place in a group, no pending invite yet) and both write. On SQLite the
lock is the database's write lock, taken before the read with ``BEGIN IMMEDIATE``: writers
queue (``busy_timeout``) as they would on a PostgreSQL row, only per database, not per row.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

Query = TypeVar("Query", bound=Select[Any])


async def for_update(session: AsyncSession, statement: Query) -> Query:
    """``statement`` locking what it reads until the transaction ends, on either backend."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is not None and not driver.in_transaction:
            # A write in this transaction already holds the lock; else take it now.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
    return statement.with_for_update()
