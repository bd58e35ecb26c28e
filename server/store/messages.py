"""Message queries and the persister's idempotent batch insert."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.bulk import insert_skipping_conflicts
from server.store.listing import AnySelect
from server.store.locks import for_update
from server.store.models import Message, StudyGroup, User


def tombstone_row(row: dict[str, Any], deleted_at: datetime) -> dict[str, Any]:
    """The row an erased message is stored as: its seq kept, no author, no body, deleted."""
    return {**row, "author_id": None, "body": "", "deleted_at": deleted_at}


def messages_of(group_id: uuid.UUID) -> AnySelect:
    """A group's live messages."""
    return select(Message).where(Message.group_id == group_id, Message.deleted_at.is_(None))


async def get_message(
    session: AsyncSession, group_id: uuid.UUID, message_id: uuid.UUID
) -> Message | None:
    """A live message of a group."""
    return await session.scalar(
        select(Message).where(
            Message.id == message_id, Message.group_id == group_id, Message.deleted_at.is_(None)
        )
    )


async def get_message_by_id(
    session: AsyncSession, group_id: uuid.UUID, message_id: uuid.UUID
) -> Message | None:
    """A group's message by id, deleted or not."""
    return await session.scalar(
        select(Message).where(Message.id == message_id, Message.group_id == group_id)
    )


async def max_seq(session: AsyncSession, group_id: uuid.UUID) -> int:
    """The highest persisted seq of a group (0 without messages)."""
    value = await session.scalar(select(func.max(Message.seq)).where(Message.group_id == group_id))
    return int(value or 0)


async def lock_seq_ceiling(session: AsyncSession, group_id: uuid.UUID) -> int:
    """A group's seq ceiling, row-locked until the transaction ends (0 for no such group)."""
    statement = select(StudyGroup.seq_ceiling).where(StudyGroup.id == group_id)
    value = await session.scalar(await for_update(session, statement))
    return int(value or 0)


async def set_seq_ceiling(session: AsyncSession, group_id: uuid.UUID, ceiling: int) -> None:
    """Move a group's seq ceiling (bookkeeping of the log: ``updated_at`` stays as it is)."""
    await session.execute(
        update(StudyGroup)
        .where(StudyGroup.id == group_id)
        .values(seq_ceiling=ceiling, updated_at=StudyGroup.updated_at)
    )


async def lower_seq_ceiling(session: AsyncSession, group_id: uuid.UUID, ceiling: int) -> None:
    """Lower a group's seq ceiling to ``ceiling`` (never raise it)."""
    await session.execute(
        update(StudyGroup)
        .where(StudyGroup.id == group_id, StudyGroup.seq_ceiling > ceiling)
        .values(seq_ceiling=ceiling, updated_at=StudyGroup.updated_at)
    )


async def messages_after(
    session: AsyncSession, group_id: uuid.UUID, after_seq: int, upto_seq: int
) -> list[Message]:
    """Messages with ``after_seq < seq <= upto_seq``, deleted ones included, in seq order."""
    result = await session.scalars(
        select(Message)
        .where(Message.group_id == group_id, Message.seq > after_seq, Message.seq <= upto_seq)
        .order_by(Message.seq)
    )
    return list(result)


async def insert_ignoring_duplicates(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> Sequence[dict[str, Any]]:
    """Insert message rows; rows whose ``(group_id, seq)`` exists already are skipped.

    Tried as one plain batch first; if a foreign key fails (the group or the author was
    deleted meanwhile), rows of missing groups are dropped and rows of missing authors (an
    erased account) are stored as tombstones. Returns the rows as they were inserted.
    """
    if not rows:
        return rows
    try:
        async with session.begin_nested():
            await _insert(session, rows)
    except IntegrityError:
        rows = await _still_valid(session, rows)
        await _insert(session, rows)
    return rows


async def displaced(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inserted rows not stored although their group is: their seq holds another message."""
    found = set(
        await session.scalars(select(Message.id).where(Message.id.in_(r["id"] for r in rows)))
    )
    absent = [row for row in rows if row["id"] not in found]
    if not absent:
        return []
    wanted = {row["group_id"] for row in absent}
    groups = set(await session.scalars(select(StudyGroup.id).where(StudyGroup.id.in_(wanted))))
    return [row for row in absent if row["group_id"] in groups]


async def _still_valid(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    groups = {row["group_id"] for row in rows}
    authors = {row["author_id"] for row in rows if row["author_id"] is not None}
    live_groups = set(await session.scalars(select(StudyGroup.id).where(StudyGroup.id.in_(groups))))
    live_authors = set(await session.scalars(select(User.id).where(User.id.in_(authors))))
    now = datetime.now(UTC)
    return [
        row
        if row["author_id"] in live_authors
        else tombstone_row(row, row.get("deleted_at") or now)
        for row in rows
        if row["group_id"] in live_groups
    ]


async def _insert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_skipping_conflicts(session, Message, rows, ["group_id", "seq"])
