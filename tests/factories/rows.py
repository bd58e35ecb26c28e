"""Rows written straight into a database, for store-level tests (PostgreSQL and SQLite)."""

from __future__ import annotations

import uuid

from server.store.db import Database
from server.store.models import StudyGroup, User


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
