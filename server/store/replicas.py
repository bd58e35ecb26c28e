"""Read replicas: which one serves a lag-tolerant read, and how far behind each one is.

A :class:`ReplicaSet` holds one engine per URL of ``DATABASE_REPLICA_URLS``. Reads that
tolerate lag ask :meth:`server.store.db.Database.read_session`, which asks the set for a
session: healthy replicas take turns (round-robin); a replica that cannot be reached, or that
lags more than ``DATABASE_REPLICA_MAX_LAG_S``, is skipped until a later check finds it well;
with none left the read goes to the primary.

A user reads their own writes (ADR 0017): after a user's write commits, the primary's WAL
insert position is kept under the user's id (in Redis, so every node sees it); a read for that
user waits, briefly and bounded, until the chosen replica has replayed that position, and
goes to the primary when it has not.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.observability.metrics import (
    REPLICA_LAG_BYTES,
    REPLICA_LAG_SECONDS,
    REPLICA_READS,
    REPLICA_UP,
)

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0
MARK_TTL_S = 300
"""How long a user's write position is kept: far longer than a replica may lag and serve."""
POLL_S = 0.002
"""Pause between two looks at a replica's replay position while a read waits for it."""

_INSERT_POSITION = text("SELECT pg_current_wal_insert_lsn()::text")
_WRITE_POSITION = text("SELECT pg_current_wal_lsn()::text")
_REPLAYED = text("SELECT pg_last_wal_replay_lsn()::text")
_REPLAYED_UP_TO = text("SELECT pg_last_wal_replay_lsn() >= :position")
"""asyncpg binds a ``pg_lsn`` parameter from its integer byte position."""


class WriteMarks(Protocol):
    """Where users' last write positions are kept (:class:`server.cache.Cache` fits)."""

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` seconds."""
        ...


class ReplicaState(StrEnum):
    """What the last check found."""

    OK = "ok"
    LAGGING = "lagging"
    DOWN = "down"


def parse_lsn(value: str) -> int:
    """A PostgreSQL LSN (``"16/B374D848"``) as a byte position."""
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    """A byte position as a PostgreSQL LSN."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


class LagClock:
    """Seconds a replica is behind, from the primary positions seen at each check.

    ``now - pg_last_xact_replay_timestamp()`` grows while the primary commits nothing, so
    it is not used: the lag is the age of the oldest primary position, sampled at a check,
    that the replica has not replayed yet (exact to one check interval, 0 when caught up).
    """

    def __init__(self, max_samples: int = 3600) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=max_samples)

    def observe(self, now: float, primary: int, replayed: int) -> float:
        """Record the primary's position at ``now``; return the replica's lag in seconds."""
        self._samples.append((now, primary))
        while self._samples and self._samples[0][1] <= replayed:
            self._samples.popleft()
        return now - self._samples[0][0] if self._samples else 0.0


@dataclass(eq=False)
class Replica:
    """One replica: its engine and what the last check found."""

    name: str
    engine: AsyncEngine
    state: ReplicaState = ReplicaState.OK
    lag_s: float = 0.0
    lag_bytes: int = 0
    clock: LagClock = field(default_factory=LagClock)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def report(self) -> dict[str, Any]:
        """State and lag, as readiness shows them."""
        return {
            "state": self.state.value,
            "lag_seconds": round(self.lag_s, 3),
            "lag_bytes": self.lag_bytes,
        }

    def set_down(self, reason: BaseException | str) -> None:
        """Take the replica out of rotation until a check finds it answering."""
        if self.state is not ReplicaState.DOWN:
            log.warning("read replica down", extra={"replica": self.name, "error": repr(reason)})
        self.state = ReplicaState.DOWN
        REPLICA_UP.labels(self.name).set(0)


class ReplicaSet:
    """The replicas of one primary, their rotation, and users' write positions."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        marks: WriteMarks,
        *,
        max_lag_s: float,
        wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = tuple(replicas)
        self._marks = marks
        self._max_lag_s = max_lag_s
        self._wait_s = wait_s
        self._clock = clock
        self._turn = 0
        for replica in self.replicas:
            REPLICA_UP.labels(replica.name).set(1)

    def rotation(self) -> list[Replica]:
        """Healthy replicas, starting with the next one's turn."""
        healthy = [r for r in self.replicas if r.state is ReplicaState.OK]
        if not healthy:
            return []
        self._turn = (self._turn + 1) % len(healthy)
        return healthy[self._turn :] + healthy[: self._turn]

    async def wrote(self, primary: AsyncEngine, users: Iterable[uuid.UUID]) -> None:
        """Remember the primary's WAL position as the last write of each of ``users``.

        Call after the writes committed. Never raises: a position that cannot be kept is
        logged (those users may then read from a replica that has not replayed it yet).
        """
        users = set(users)
        if not users:
            return
        try:
            async with primary.connect() as conn:
                position = str(await conn.scalar(_INSERT_POSITION))
            value = str(parse_lsn(position)).encode()
            await asyncio.gather(*(self._marks.set(_key(u), value, MARK_TTL_S) for u in users))
        except Exception as exc:
            log.warning("could not keep a write position", extra={"error": repr(exc)})

    async def open(self, for_user: uuid.UUID | None) -> tuple[AsyncSession, Replica] | None:
        """A session on a replica fit to serve ``for_user``; None means: use the primary.

        Fit: reachable, in rotation, and (when the user wrote recently) having replayed the
        user's last write, waiting at most ``DATABASE_REPLICA_WAIT_S`` for it.
        """
        try:
            position = await self._position(for_user)
        except Exception as exc:
            log.warning(
                "write positions unavailable; reading the primary", extra={"error": repr(exc)}
            )
            REPLICA_READS.labels("primary", "marks_unavailable").inc()
            return None
        deadline = self._clock() + self._wait_s
        behind = False
        for replica in self.rotation():
            session = replica.sessions()
            try:
                if await self._ready(session, position, deadline):
                    REPLICA_READS.labels("replica", "ok").inc()
                    return session, replica
                behind = True
            except Exception as exc:
                replica.set_down(exc)
            await session.close()
        REPLICA_READS.labels("primary", "behind" if behind else "no_replica").inc()
        return None

    async def check(self, primary: AsyncEngine) -> None:
        """Probe every replica: reachable? how far behind? Update states and gauges."""
        now = self._clock()
        try:
            head = await asyncio.wait_for(_position_of(primary, _WRITE_POSITION), CHECK_TIMEOUT_S)
        except Exception:
            head = None  # the primary's own outage is readiness's business
        await asyncio.gather(*(self._check_one(replica, now, head) for replica in self.replicas))

    def report(self) -> dict[str, dict[str, Any]]:
        """Each replica's state and lag, by name."""
        return {replica.name: replica.report() for replica in self.replicas}

    async def dispose(self) -> None:
        """Close every replica's pooled connections."""
        for replica in self.replicas:
            await replica.engine.dispose()

    async def _check_one(self, replica: Replica, now: float, head: int | None) -> None:
        try:
            replayed = await asyncio.wait_for(
                _position_of(replica.engine, _REPLAYED), CHECK_TIMEOUT_S
            )
        except Exception as exc:
            replica.set_down(exc)
            return
        if replayed is None:
            replica.set_down("not a standby: pg_last_wal_replay_lsn() is null")
            return
        if head is not None:
            replica.lag_bytes = max(0, head - replayed)
            replica.lag_s = replica.clock.observe(now, head, replayed)
        lagging = replica.lag_s > self._max_lag_s
        state = ReplicaState.LAGGING if lagging else ReplicaState.OK
        if state is not replica.state:
            log.warning(
                "read replica state changed",
                extra={"replica": replica.name, "state": state.value, "lag_s": replica.lag_s},
            )
        replica.state = state
        REPLICA_UP.labels(replica.name).set(1)
        REPLICA_LAG_SECONDS.labels(replica.name).set(replica.lag_s)
        REPLICA_LAG_BYTES.labels(replica.name).set(replica.lag_bytes)

    async def _position(self, user: uuid.UUID | None) -> int | None:
        if user is None:
            return None
        value = await self._marks.get(_key(user))
        return int(value) if value else None

    async def _ready(self, session: AsyncSession, position: int | None, deadline: float) -> bool:
        """Connect; when ``position`` is set, wait (until ``deadline``) for its replay."""
        if position is None:
            await session.connection()
            return True
        while True:
            if await session.scalar(_REPLAYED_UP_TO, {"position": position}):
                return True
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(POLL_S)


def _key(user: uuid.UUID) -> str:
    return f"wal-position:{user}"


async def _position_of(engine: AsyncEngine, query: Any) -> int | None:
    async with engine.connect() as conn:
        value = await conn.scalar(query)
    return None if value is None else parse_lsn(str(value))
