"""Two readers of one partition at once: what one read and never wrote is not lost.

It happens for a moment when a lease expires under a stalled node, or when Redis loses the
leases (a ``FLUSHALL``: both nodes then hold the partition until the old holder notices).
Here a "ghost" reader takes entries after the live persister's first adoption and never
acknowledges them; the persister adopts again every ``readopt_s`` and stores them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from server.bus.partitions import Partitions
from server.realtime.leases import LocalLeases
from server.realtime.persister import Persister
from server.store.db import Database, create_database
from server.store.models import Message
from tests.fixtures.floors import DictFloors
from tests.fixtures.services import REDIS_URL
from tests.integration.test_message_log_contract import GENEROUS, new_message, redis_log
from tests.integration.test_seq_floors import new_group


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    """The run's PostgreSQL database."""
    database = create_database(pg_url, pool_min=1, pool_max=2)
    yield database
    await database.dispose()


async def stored_ids(db: Database, group_id: uuid.UUID) -> set[uuid.UUID]:
    """Ids of the group's stored messages."""
    async with db.session() as session:
        return set(await session.scalars(select(Message.id).where(Message.group_id == group_id)))


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the shared test Redis."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_entries_another_reader_left_pending_are_adopted_again(
    db: Database, redis: Redis, own_prefix: str
) -> None:
    """The ghost reads 5 messages while the persister lingers; they reach history anyway."""
    group = await new_group(db)
    log = redis_log(redis, Partitions(own_prefix), DictFloors())
    persister = Persister(log, db, "live", LocalLeases(), block_s=0.05, linger_s=3.0, readopt_s=1.0)
    persister.start()
    try:
        await asyncio.sleep(0.5)  # adopted (nothing yet), read nothing, lingering
        messages = [new_message(group, uuid.uuid4()) for _ in range(5)]
        for message in messages:
            await log.append(message, GENEROUS)
        taken = await log.pending(0, "ghost", 10, 0.5)
        assert len(taken) == 5  # the ghost holds them all, and never acknowledges them
        wanted = {m.message_id for m in messages}
        for _ in range(150):  # up to 15 s
            if await stored_ids(db, group) == wanted:
                break
            await asyncio.sleep(0.1)
        assert await stored_ids(db, group) == wanted
    finally:
        await persister.stop()
