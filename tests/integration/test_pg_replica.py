"""The streaming-replica fixture itself: a real second PostgreSQL cluster replaying the first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.fixtures.pg_cluster import StreamingPair

pytestmark = pytest.mark.slow


NOTE = "SELECT note FROM replica_probe WHERE id = $1"
COUNT = "SELECT count(*) FROM replica_probe"


@pytest.fixture
async def probe(pg_replica: StreamingPair) -> AsyncIterator[None]:
    """A scratch table on the primary's ``postgres`` database (the app database stays clean)."""
    conn = await asyncpg.connect(pg_replica.primary.url())
    try:
        await conn.execute("CREATE TABLE replica_probe (id int PRIMARY KEY, note text)")
    finally:
        await conn.close()
    yield
    conn = await asyncpg.connect(pg_replica.primary.url())
    try:
        await conn.execute("DROP TABLE replica_probe")
    finally:
        await conn.close()


async def _fetch(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _write(pair: StreamingPair, row: int) -> None:
    insert = "INSERT INTO replica_probe VALUES ($1, $2) RETURNING id"
    await _fetch(pair.primary.url(), insert, row, f"n{row}")


@pytest.mark.usefixtures("probe")
async def test_a_write_on_the_primary_is_read_on_the_replica_after_catch_up(
    pg_replica: StreamingPair,
) -> None:
    await _write(pg_replica, 1)
    position = await pg_replica.wait_caught_up()

    assert await _fetch(pg_replica.replica.url(), NOTE, 1) == "n1"
    caught_up = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"
    assert await _fetch(pg_replica.replica.url(), caught_up, position) is True
    lag = await pg_replica.lag()
    assert lag.bytes == 0
    assert lag.seconds is not None
    assert 0 <= lag.seconds < 10


async def test_the_replica_is_read_only_and_streams_the_migrated_database(
    pg_replica: StreamingPair,
) -> None:
    assert await _fetch(pg_replica.replica.url(), "SELECT pg_is_in_recovery()") is True
    assert await _fetch(pg_replica.primary.url(), "SELECT pg_is_in_recovery()") is False
    streaming = await _fetch(
        pg_replica.primary.url(),
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
    )
    assert streaming == 1
    head = "SELECT version_num FROM alembic_version"
    assert await _fetch(pg_replica.replica_url, head) == await _fetch(pg_replica.primary_url, head)

    conn = await asyncpg.connect(pg_replica.replica_url)
    try:
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE nope (id int)")
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            await conn.execute("DELETE FROM alembic_version")
    finally:
        await conn.close()


@pytest.mark.usefixtures("probe")
async def test_lag_is_measured_while_replay_is_paused(pg_replica: StreamingPair) -> None:
    await pg_replica.wait_caught_up()
    await _fetch(pg_replica.replica.url(), "SELECT pg_wal_replay_pause()")
    try:
        for row in range(1, 21):
            await _write(pg_replica, row)
        await asyncio.sleep(0.3)
        lag = await pg_replica.lag()
        assert lag.bytes > 0
        assert await _fetch(pg_replica.replica.url(), COUNT) == 0
    finally:
        await _fetch(pg_replica.replica.url(), "SELECT pg_wal_replay_resume()")
    await pg_replica.wait_caught_up()
    assert (await pg_replica.lag()).bytes == 0
    assert await _fetch(pg_replica.replica.url(), COUNT) == 20


@pytest.mark.usefixtures("probe")
@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_stopped_replica_refuses_connections_and_catches_up_when_restarted(
    pg_replica: StreamingPair, how: str
) -> None:
    if how == "stop":
        await asyncio.to_thread(pg_replica.stop_replica)
    else:
        await asyncio.to_thread(pg_replica.kill_replica)
    assert not pg_replica.replica.running

    with pytest.raises(OSError):
        await asyncpg.connect(pg_replica.replica.url(), timeout=5)
    await _write(pg_replica, 7)  # the primary does not wait for its replica

    await pg_replica.astart_replica()
    await pg_replica.wait_caught_up()
    assert await _fetch(pg_replica.replica.url(), NOTE, 7) == "n7"
    assert await _fetch(pg_replica.replica.url(), "SELECT pg_is_in_recovery()") is True
