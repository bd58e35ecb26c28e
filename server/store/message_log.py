"""The message log: the one atomic step that makes a message durable, ordered and visible.

``append`` rate-limits the author, answers a repeated ``client_msg_id`` with the first ack,
assigns the group's next ``seq``, keeps the message in the group's recovery window, queues it
for persistence, and publishes it on the bus, all at once. Two implementations: Redis
(``server/store/redis_log.py``, one Lua script) and this module's in-process twin.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from protocol.codec import JSON
from protocol.frames import MessageCreated
from server.bus.base import Bus
from server.errors import RateLimited
from server.hub.envelope import Kind, group_channel, pack
from server.security.ratelimit import MemoryRateLimiter, Rate

Seeder = Callable[[uuid.UUID], Awaitable[int]]
"""Returns the highest persisted seq of a group (to start its counter after a cold start)."""

IDEMPOTENCY_TTL_S = 24 * 3600
MAX_REMEMBERED_ACKS = 100_000


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message waiting for its seq."""

    group_id: uuid.UUID
    author_id: uuid.UUID
    message_id: uuid.UUID
    body: str
    client_msg_id: str
    created_at: datetime

    def frame_template(self) -> tuple[bytes, bytes]:
        """The JSON ``message`` frame split around its seq, so the seq can be filled in last."""
        encoded = JSON.encode(
            MessageCreated(
                group_id=self.group_id,
                seq=0,
                message_id=self.message_id,
                author_id=self.author_id,
                body=self.body,
                created_at=self.created_at,
                client_msg_id=self.client_msg_id,
            )
        )
        prefix, _, suffix = encoded.partition(b'"seq":0,')
        return prefix + b'"seq":', b"," + suffix

    def row(self, seq: int) -> dict[str, Any]:
        """The ``messages`` row of this message once it has ``seq``."""
        return {
            "id": self.message_id,
            "group_id": self.group_id,
            "seq": seq,
            "author_id": self.author_id,
            "body": self.body,
            "client_msg_id": self.client_msg_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    """The ack of an append: the first one, when ``duplicate``."""

    seq: int
    message_id: uuid.UUID
    created_at: datetime
    duplicate: bool


@dataclass(frozen=True, slots=True)
class PersistEntry:
    """A logged message waiting to be written to the database."""

    entry_id: str
    row: dict[str, Any]
    logged_at: float


@dataclass(frozen=True, slots=True)
class Recent:
    """A message frame from the recovery window."""

    seq: int
    frame: bytes
    created_ms: int


class MessageLog(Protocol):
    """Where messages become durable and visible."""

    async def append(self, message: NewMessage, rate: Rate) -> Accepted:
        """Make ``message`` durable, give it a seq, publish it.

        Raises:
            RateLimited: the author is over the message rate.
        """
        ...

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The highest seq assigned in the group."""
        ...

    async def recent(self, group_id: uuid.UUID, after_seq: int, limit: int) -> list[Recent]:
        """Frames of the recovery window with seq > ``after_seq``, oldest first."""
        ...

    async def pending(self, consumer: str, count: int, block_s: float) -> list[PersistEntry]:
        """Entries for ``consumer`` to persist (its own unacknowledged ones first)."""
        ...

    async def acknowledge(self, entry_ids: list[str]) -> None:
        """Mark entries persisted."""
        ...

    async def lag(self) -> tuple[int, float]:
        """Entries not yet persisted, and the age in seconds of the oldest."""
        ...


def ack_value(seq: int, message_id: uuid.UUID, created_at: datetime) -> str:
    """What the idempotency record stores: enough to repeat the first ack."""
    return f"{seq}|{message_id}|{created_at.isoformat()}"


def parse_ack(value: str) -> Accepted:
    """Rebuild a duplicate's ack from its idempotency record."""
    seq, message_id, created = value.split("|", 2)
    return Accepted(int(seq), uuid.UUID(message_id), datetime.fromisoformat(created), True)


class MemoryMessageLog:
    """In-process twin: counters seeded from the database, a write-behind queue.

    A crash loses what the queue held; see ADR 0004 (single-node development default).
    """

    def __init__(
        self,
        bus: Bus,
        seeder: Seeder,
        *,
        window: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._seeder = seeder
        self._window = window
        self._window_s = window_s
        self._clock = clock
        self._seq: dict[uuid.UUID, int] = {}
        self._recent: dict[uuid.UUID, deque[Recent]] = {}
        self._acks: OrderedDict[tuple[uuid.UUID, uuid.UUID, str], tuple[float, str]] = OrderedDict()
        self._queue: asyncio.Queue[PersistEntry] = asyncio.Queue()
        self._limiter = MemoryRateLimiter(clock)
        self._lock = asyncio.Lock()

    async def append(self, message: NewMessage, rate: Rate) -> Accepted:
        """Append in process order (one lock), publish on the in-process bus."""
        key = (message.group_id, message.author_id, message.client_msg_id)
        async with self._lock:
            known = self._acks.get(key)
            if known is not None and known[0] > self._clock():
                return parse_ack(known[1])
            decision = await self._limiter.hit(f"msg:{message.author_id}", rate)
            if not decision.allowed:
                raise RateLimited(decision.retry_after, "Slow down: too many messages")
            seq = await self._next_seq(message.group_id)
            prefix, suffix = message.frame_template()
            frame = prefix + str(seq).encode() + suffix
            created_ms = int(message.created_at.timestamp() * 1000)
            window = self._recent.setdefault(message.group_id, deque(maxlen=self._window))
            window.append(Recent(seq, frame, created_ms))
            self._remember(key, ack_value(seq, message.message_id, message.created_at))
            self._queue.put_nowait(PersistEntry(str(seq), message.row(seq), self._clock()))
            envelope = pack(Kind.MESSAGE, frame, seq=seq, subject=str(created_ms))
            await self._bus.publish(group_channel(message.group_id), envelope)
        return Accepted(seq, message.message_id, message.created_at, False)

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The group's counter, seeded on first use."""
        if group_id not in self._seq:
            self._seq[group_id] = await self._seeder(group_id)
        return self._seq[group_id]

    async def recent(self, group_id: uuid.UUID, after_seq: int, limit: int) -> list[Recent]:
        """Frames newer than ``after_seq`` still inside the window."""
        horizon = (self._clock() - self._window_s) * 1000
        frames = [
            r
            for r in self._recent.get(group_id, ())
            if r.seq > after_seq and r.created_ms >= horizon
        ]
        return frames[:limit]

    async def pending(self, consumer: str, count: int, block_s: float) -> list[PersistEntry]:
        """Wait up to ``block_s`` for entries, then take up to ``count``."""
        entries: list[PersistEntry] = []
        try:
            entries.append(await asyncio.wait_for(self._queue.get(), block_s))
        except TimeoutError:
            return entries
        while len(entries) < count and not self._queue.empty():
            entries.append(self._queue.get_nowait())
        return entries

    async def acknowledge(self, entry_ids: list[str]) -> None:
        """Nothing to do: taking an entry off the queue was the acknowledgement."""

    async def lag(self) -> tuple[int, float]:
        """Queued entries; their age is not tracked in process (reported as 0)."""
        return self._queue.qsize(), 0.0

    async def _next_seq(self, group_id: uuid.UUID) -> int:
        seq = await self.last_seq(group_id) + 1
        self._seq[group_id] = seq
        return seq

    def _remember(self, key: tuple[uuid.UUID, uuid.UUID, str], value: str) -> None:
        now = self._clock()
        self._acks[key] = (now + IDEMPOTENCY_TTL_S, value)
        while self._acks and (
            len(self._acks) > MAX_REMEMBERED_ACKS or next(iter(self._acks.values()))[0] <= now
        ):
            self._acks.popitem(last=False)


def utc_from_ms(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)
