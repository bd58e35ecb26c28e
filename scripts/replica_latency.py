"""What read-your-writes costs on a real streaming replica: the figures behind ADR 0017.

Run from the repository root: ``python -m scripts.replica_latency`` (``make replica-latency``).
It starts a PostgreSQL primary and a hot standby of its own on loopback ports (the test
fixture's :class:`~tests.fixtures.pg_cluster.StreamingPair`), uses the local Redis
(``REDIS_URL``, default ``redis://127.0.0.1:6379/0``) under a throw-away key prefix, and
times, per operation, with the server's own code where it exists:

- (a) *primary window*: a write sets a per-user marker with a TTL (one Redis ``SET``); a read
  looks it up (one Redis ``GET``) and goes to the primary while it exists;
- (b) *WAL position* (what the server does): a write reads the primary's WAL insert
  position and keeps it (:meth:`Database.wrote`); a read looks it up and checks the replica's
  replay position before reading there (:meth:`Database.read_session`);
- the replay delay: from a commit on the primary until the replica has replayed it, which
  is what a read right after a write waits in (b), and what the window of (a) must exceed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from server.cache import RedisCache
from server.store.db import Database, create_database
from tests.fixtures.pg_cluster import StreamingPair

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
INSERT = text("INSERT INTO probe (note) VALUES ('x')")
SELECT = text("SELECT count(*) FROM probe")


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.3f} ms   "
        f"p99 {p99 * 1000:7.3f} ms   max {ordered[-1] * 1000:7.3f} ms"
    )


async def _time(rounds: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(min(20, rounds)):  # warm the pools
        await action()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


class Bench:
    """The operations being timed, on one database with one replica."""

    def __init__(self, db: Database, redis: Redis, prefix: str) -> None:
        self.db = db
        self.redis = redis
        self.prefix = prefix
        self.user = uuid.uuid4()

    async def write(self) -> None:
        """One committed INSERT on the primary."""
        async with self.db.session() as session, session.begin():
            await session.execute(INSERT)

    async def window_mark(self) -> None:
        """(a) after a write: the per-user marker."""
        await self.redis.set(f"{self.prefix}recent:{self.user}", b"1", ex=5)

    async def window_lookup(self) -> None:
        """(a) before a read: is there a marker?"""
        await self.redis.get(f"{self.prefix}recent:{self.user}")

    async def position_mark(self) -> None:
        """(b) after a write: the primary's WAL position, kept."""
        await self.db.wrote(self.user)

    async def read(self, for_user: uuid.UUID | None) -> None:
        """One lag-tolerant read (a COUNT on the replica, or the primary)."""
        async with self.db.read_session(for_user=for_user) as session:
            await session.scalar(SELECT)

    async def ready_after_write(self) -> float:
        """(b) end to end: commit, keep the position, open a read that waits for its replay."""
        await self.write()
        started = time.perf_counter()
        await self.db.wrote(self.user)
        async with self.db.read_session(for_user=self.user):
            pass
        return time.perf_counter() - started


async def replay_delay(primary: asyncpg.Connection, replica: asyncpg.Connection) -> float:
    """Commit on the primary, then poll the replica until it has replayed the commit."""
    await primary.execute("INSERT INTO probe (note) VALUES ('y')")
    started = time.perf_counter()
    position = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
    for _ in range(100_000):
        if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", position):
            break
        await asyncio.sleep(0.0002)
    return time.perf_counter() - started


async def run(rounds: int) -> None:
    """Start the pair, time every operation ``rounds`` times, print the figures."""
    pair = await asyncio.to_thread(StreamingPair.create)
    redis = Redis.from_url(REDIS_URL)
    prefix = f"sbbench:{uuid.uuid4().hex[:8]}:"
    try:
        pair.primary.psql("CREATE TABLE probe (id serial PRIMARY KEY, note text)", pair.database)
        await pair.wait_caught_up()
        db = create_database(
            pair.primary_url,
            pool_min=2,
            pool_max=4,
            replica_urls=[pair.replica_url],
            marks=RedisCache(redis, prefix),
            wait_s=5.0,
        )
        primary = await asyncpg.connect(pair.primary_url)
        replica = await asyncpg.connect(pair.replica_url)
        try:
            await _report(Bench(db, redis, prefix), rounds)
            delays = [await replay_delay(primary, replica) for _ in range(rounds)]
            print(f"  {'commit -> replayed (polled, 0.2 ms)':<36} {_ms(delays)}")
        finally:
            await primary.close()
            await replica.close()
            await db.dispose()
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await asyncio.to_thread(pair.destroy)


async def _report(bench: Bench, rounds: int) -> None:
    stranger = uuid.uuid4()
    rows = {
        "write (INSERT + COMMIT, primary)": await _time(rounds, bench.write),
        "read, nobody's marker (replica)": await _time(rounds, lambda: bench.read(None)),
        "(a) write: SET marker": await _time(rounds, bench.window_mark),
        "(a) read: GET marker": await _time(rounds, bench.window_lookup),
        "(b) write: WAL position + SET": await _time(rounds, bench.position_mark),
        "(b) read, writer, replayed": await _time(rounds, lambda: bench.read(bench.user)),
        "(b) read, other user (GET only)": await _time(rounds, lambda: bench.read(stranger)),
    }
    rows["(b) write, then its read can start"] = [
        await bench.ready_after_write() for _ in range(rounds)
    ]
    print(f"replica latency, {rounds} rounds each, one primary + one streaming replica")
    for name, samples in rows.items():
        print(f"  {name:<36} {_ms(samples)}")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(run(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
