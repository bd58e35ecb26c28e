"""A message PostgreSQL refuses to store never stops history for the messages behind it.

An acked message carrying data the database cannot hold (a NUL in its ``client_msg_id`` got
through once) made every batch fail, retried for ever: no message of any group reached
history again. Now the batch is written entry by entry and the refused entry is set aside,
loudly (an error and a metric); the others are stored.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.bus.partitions import Partitions
from server.observability.metrics import PERSISTER_REFUSED
from server.realtime.leases import LocalLeases
from server.realtime.persister import Persister
from server.store.db import Database, create_database
from tests.fixtures.floors import DictFloors
from tests.fixtures.services import REDIS_URL
from tests.integration.test_message_log_contract import GENEROUS, new_message, redis_log
from tests.integration.test_persister_readoption import stored_ids
from tests.integration.test_seq_floors import new_group


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    """The run's PostgreSQL database."""
    database = create_database(pg_url, pool_min=1, pool_max=2)
    yield database
    await database.dispose()


async def test_a_refused_message_is_set_aside_and_the_rest_is_stored(
    db: Database, own_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two groups, a poisoned message between good ones: the good ones reach history."""
    redis = Redis.from_url(REDIS_URL)
    first, second = await new_group(db), await new_group(db)
    log = redis_log(redis, Partitions(own_prefix), DictFloors())
    before = PERSISTER_REFUSED._value.get()
    good = [new_message(first, uuid.uuid4()) for _ in range(3)]
    poison = new_message(first, uuid.uuid4(), client_msg_id="a\x00b")
    later = [new_message(second, uuid.uuid4()) for _ in range(3)]
    for message in (*good, poison, *later):
        await log.append(message, GENEROUS)
    persister = Persister(log, db, "node", LocalLeases(), block_s=0.05, linger_s=0.05)
    persister.start()
    try:
        for _ in range(100):
            if await stored_ids(db, second) == {m.message_id for m in later}:
                break
            await asyncio.sleep(0.1)
        assert await stored_ids(db, first) == {m.message_id for m in good}
        assert await stored_ids(db, second) == {m.message_id for m in later}
        assert PERSISTER_REFUSED._value.get() == before + 1
        refused = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.__dict__["message_id"] for r in refused] == [str(poison.message_id)]
        assert await log.pending(0, "node", 10, 0.05) == []  # nothing left to retry
    finally:
        await persister.stop()
        await redis.aclose()
