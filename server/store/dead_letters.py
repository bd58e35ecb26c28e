"""Dead-letter queries. Never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import DeadLetter


async def add_dead_letter(session: AsyncSession, values: dict[str, Any]) -> DeadLetter:
    """Record a job that failed every attempt."""
    row = DeadLetter(**values)
    session.add(row)
    await session.flush()
    return row


async def list_dead_letters(
    session: AsyncSession, *, limit: int, waiting: bool
) -> list[DeadLetter]:
    """Dead letters, newest first (only those not replayed yet when ``waiting``)."""
    statement = (
        select(DeadLetter).order_by(DeadLetter.created_at.desc(), DeadLetter.id).limit(limit)
    )
    if waiting:
        statement = statement.where(DeadLetter.replayed_at.is_(None))
    return list(await session.scalars(statement))


async def get_dead_letter(session: AsyncSession, letter_id: uuid.UUID) -> DeadLetter | None:
    """One dead letter."""
    return await session.get(DeadLetter, letter_id)


async def mark_replayed(session: AsyncSession, letter_id: uuid.UUID, now: datetime) -> bool:
    """Mark a dead letter replayed unless it was already (so it is replayed once)."""
    result = await session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == letter_id, DeadLetter.replayed_at.is_(None))
        .values(replayed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def purge_dead_letters(session: AsyncSession, *, replayed_only: bool) -> int:
    """Delete dead letters (only replayed ones when ``replayed_only``); return how many."""
    statement = delete(DeadLetter)
    if replayed_only:
        statement = statement.where(DeadLetter.replayed_at.is_not(None))
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count_waiting(session: AsyncSession) -> int:
    """Dead letters not replayed yet."""
    value = await session.scalar(
        select(func.count()).select_from(DeadLetter).where(DeadLetter.replayed_at.is_(None))
    )
    return int(value or 0)
