"""Seq reservations in the database (PostgreSQL and SQLite): the floor a lost log resumes above."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from server.realtime.floors import Reservation, SeqFloors
from server.store.db import Database, create_database
from server.store.messages import insert_ignoring_duplicates
from server.store.models import StudyGroup
from tests.fixtures.services import migrate


@pytest.fixture(params=["postgresql", "sqlite"])
async def db(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    """The run's PostgreSQL database, or a migrated SQLite file."""
    url = pg_url
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'floors.db'}"
        await asyncio.to_thread(migrate, url)
    database = create_database(url, pool_min=1, pool_max=2)
    yield database
    await database.dispose()


async def new_group(db: Database) -> uuid.UUID:
    """A group without messages."""
    async with db.session() as session, session.begin():
        group = StudyGroup(name="floors", visibility="public", member_count=0)
        session.add(group)
        await session.flush()
        return group.id


async def store_messages(db: Database, group_id: uuid.UUID, upto: int) -> None:
    """Rows 1..upto, as the persister writes them."""
    rows = [
        {
            "id": uuid.uuid4(),
            "group_id": group_id,
            "seq": seq,
            "author_id": None,
            "body": f"m{seq}",
            "client_msg_id": f"c{seq}",
            "created_at": datetime.now(UTC),
        }
        for seq in range(1, upto + 1)
    ]
    async with db.session() as session, session.begin():
        await insert_ignoring_duplicates(session, rows)


async def ceiling_and_updated(db: Database, group_id: uuid.UUID) -> tuple[int, datetime]:
    async with db.session() as session:
        row = (
            await session.execute(
                select(StudyGroup.seq_ceiling, StudyGroup.updated_at).where(
                    StudyGroup.id == group_id
                )
            )
        ).one()
    return int(row[0]), row[1]


async def test_a_new_group_starts_at_zero_and_reserves_a_block(db: Database) -> None:
    """No messages, no ceiling: numbering starts at 1, up to the block; nothing was lost."""
    group = await new_group(db)
    _, updated = await ceiling_and_updated(db, group)
    assert await SeqFloors(db, block=100).reserve(group, None) == Reservation(0, 100, False)
    assert await ceiling_and_updated(db, group) == (100, updated)  # updated_at untouched


async def test_a_log_continues_its_block_and_reserves_the_next(db: Database) -> None:
    """A counter at its ceiling gets the next block and keeps counting from where it is."""
    group = await new_group(db)
    floors = SeqFloors(db, block=100)
    await floors.reserve(group, None)
    assert await floors.reserve(group, 100) == Reservation(100, 200, False)


async def test_a_counter_lost_with_an_unstored_tail_resumes_above_the_ceiling(
    db: Database,
) -> None:
    """Redis forgot the counter; 40 stored, up to 100 reserved: resume above 100, a loss."""
    group = await new_group(db)
    floors = SeqFloors(db, block=100)
    await floors.reserve(group, None)
    await store_messages(db, group, 40)
    assert await floors.reserve(group, None) == Reservation(100, 200, True)


async def test_a_counter_behind_the_database_is_a_loss(db: Database) -> None:
    """A stale counter (a failover to a replica that missed writes) jumps over the ceiling."""
    group = await new_group(db)
    floors = SeqFloors(db, block=100)
    await floors.reserve(group, None)
    await floors.reserve(group, 100)
    assert await floors.reserve(group, 30) == Reservation(200, 300, True)


async def test_groups_from_before_reservations_start_above_their_messages(db: Database) -> None:
    """A group with stored messages and no ceiling yet continues from its highest seq."""
    group = await new_group(db)
    await store_messages(db, group, 7)
    assert await SeqFloors(db, block=10).reserve(group, None) == Reservation(7, 17, False)


async def test_a_clean_close_gives_the_unused_seqs_back(db: Database) -> None:
    """Released at 37, a restarted log numbers on from 37 without a gap and without a loss."""
    group = await new_group(db)
    floors = SeqFloors(db, block=100)
    await floors.reserve(group, None)
    await store_messages(db, group, 37)
    await floors.release(group, 37)
    await floors.release(group, 90)  # never raises the ceiling
    assert (await ceiling_and_updated(db, group))[0] == 37
    assert await floors.reserve(group, None) == Reservation(37, 137, False)


async def test_a_block_reserved_ahead_only_if_the_ceiling_did_not_move(db: Database) -> None:
    """A block is reserved ahead only while the ceiling is as the log saw it."""
    group = await new_group(db)
    floors = SeqFloors(db, block=100)
    await floors.reserve(group, None)
    assert await floors.extend(group, 100) == 200
    assert await floors.extend(group, 100) is None
    assert (await ceiling_and_updated(db, group))[0] == 200
