"""Rows written straight into a database, for store-level tests (PostgreSQL and SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from server.store.db import Database
from server.store.models import Message, StudyGroup, User


async def new_user(db: Database) -> uuid.UUID:
    """A user row."""
    name = uuid.uuid4().hex[:12]
    async with db.session() as session, session.begin():
        user = User(
            email=f"{name}@example.com", username=name, display_name=name, password_hash="x"
        )
        session.add(user)
        await session.flush()
        return user.id


async def new_group(db: Database) -> uuid.UUID:
    """A group without messages."""
    async with db.session() as session, session.begin():
        group = StudyGroup(name="erasure", visibility="public", member_count=0)
        session.add(group)
        await session.flush()
        return group.id


async def many_messages(
    db: Database, group_id: str, author_id: str, count: int, body: Callable[[int], str]
) -> None:
    """``count`` messages of one author (seqs 1..count), straight in: posting is slow."""
    async with db.session() as session, session.begin():
        session.add_all(
            Message(
                id=uuid.uuid4(),
                group_id=uuid.UUID(group_id),
                seq=seq,
                author_id=uuid.UUID(author_id),
                body=body(seq),
                client_msg_id=f"bulk-{seq}",
            )
            for seq in range(1, count + 1)
        )
