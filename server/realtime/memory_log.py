"""The message log in process, for the embedded default (one node, ADR 0004)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import datetime

from server.bus.base import Bus
from server.errors import RateLimited
from server.realtime.envelope import Kind, group_channel, pack
from server.realtime.floors import Floors, report_loss
from server.realtime.log import (
    IDEMPOTENCY_TTL_S,
    Accepted,
    NewMessage,
    PersistEntry,
    Recent,
    ack_value,
    author_marker,
    parse_ack,
    tombstoned,
)
from server.security.ratelimit import MemoryRateLimiter, Rate
from server.store.messages import tombstone_row

log = logging.getLogger(__name__)
MAX_REMEMBERED_ACKS = 100_000


class MemoryMessageLog:
    """In-process twin: counters within blocks reserved in the database, a write-behind queue.

    A crash loses what the queue held; see ADR 0004 (single-node development default). A clean
    close gives the unused part of each block back, so a restart numbers on without a gap.
    """

    def __init__(
        self,
        bus: Bus,
        floors: Floors,
        *,
        window: int,
        window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._floors = floors
        self._window = window
        self._window_s = window_s
        self._clock = clock
        self._seq: dict[uuid.UUID, int] = {}
        self._ceiling: dict[uuid.UUID, int] = {}
        self._recent: dict[uuid.UUID, deque[Recent]] = {}
        self._acks: OrderedDict[tuple[uuid.UUID, uuid.UUID, str], tuple[float, str]] = OrderedDict()
        self._queue: asyncio.Queue[PersistEntry] = asyncio.Queue()
        self._taken: dict[str, PersistEntry] = {}
        """Entries handed to the persister and not yet acknowledged (in queue order)."""
        self._limiter = MemoryRateLimiter(clock)
        self._lock = asyncio.Lock()
        self._reserving = asyncio.Lock()

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
            entry = PersistEntry(str(message.message_id), message.row(seq), self._clock())
            self._queue.put_nowait(entry)
            envelope = pack(Kind.MESSAGE, frame, seq=seq, subject=str(created_ms))
            await self._bus.publish(group_channel(message.group_id), envelope)
        return Accepted(seq, message.message_id, message.created_at, False)

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The group's counter, started from a reservation on first use."""
        if group_id not in self._seq:
            await self._reserved(group_id, None)
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

    @property
    def partitions(self) -> int:
        """One queue."""
        return 1

    async def pending(
        self, partition: int, consumer: str, count: int, block_s: float, *, own: bool = True
    ) -> list[PersistEntry]:
        """Entries taken but not acknowledged (a failed write), else new ones within ``block_s``."""
        if own and self._taken:
            return list(self._taken.values())[:count]
        entries: list[PersistEntry] = []
        try:
            entries.append(await asyncio.wait_for(self._queue.get(), block_s))
        except TimeoutError:
            return entries
        while len(entries) < count and not self._queue.empty():
            entries.append(self._queue.get_nowait())
        self._taken.update((entry.entry_id, entry) for entry in entries)
        return entries

    async def adopt(self, partition: int, consumer: str) -> int:
        """Nobody else reads this queue."""
        return 0

    async def acknowledge(self, partition: int, entry_ids: list[str]) -> None:
        """Forget persisted entries."""
        for entry_id in entry_ids:
            self._taken.pop(entry_id, None)

    async def lag(self) -> tuple[int, float]:
        """Queued entries; their age is not tracked in process (reported as 0)."""
        return self._queue.qsize() + len(self._taken), 0.0

    async def close(self) -> None:
        """Give back the unused seqs of every block, if everything was persisted."""
        if not self._queue.empty() or self._taken:
            return
        try:
            for group_id, counter in self._seq.items():
                await self._floors.release(group_id, counter)
        except Exception as exc:  # the next start resumes above the block instead
            log.warning("could not give unused seqs back", extra={"error": repr(exc)})

    async def erase_author(
        self, author_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> int:
        """Tombstones in every window and queued row of the author's (all groups are here)."""
        marker = author_marker(author_id)
        async with self._lock:
            erased = 0
            for window in self._recent.values():
                for index in range(len(window)):
                    if marker in window[index].frame:
                        window[index] = tombstoned(window[index])
                        erased += 1
            self._erase_queued(author_id, deleted_at)
            for key in [key for key in self._acks if key[1] == author_id]:
                del self._acks[key]
            self._limiter.forget(f"msg:{author_id}")
        return erased

    async def revise(self, group_id: uuid.UUID, seq: int, frame: bytes) -> bool:
        """Swap the frame of ``seq`` in the group's window, if it still holds it."""
        window = self._recent.get(group_id, deque())
        for index, recent in enumerate(window):
            if recent.seq == seq:
                window[index] = Recent(seq, frame, recent.created_ms)
                return True
        return False

    def _erase_queued(self, author_id: uuid.UUID, deleted_at: datetime) -> None:
        """Rows waiting for the persister (queued or taken) become tombstone rows."""

        def erased(entry: PersistEntry) -> PersistEntry:
            if entry.row["author_id"] != author_id:
                return entry
            return PersistEntry(
                entry.entry_id, tombstone_row(entry.row, deleted_at), entry.logged_at
            )

        queued = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        for entry in queued:
            self._queue.put_nowait(erased(entry))
        self._taken = {key: erased(entry) for key, entry in self._taken.items()}

    async def _next_seq(self, group_id: uuid.UUID) -> int:
        seq = await self.last_seq(group_id) + 1
        if seq > self._ceiling[group_id]:
            await self._reserved(group_id, seq - 1)
            seq = self._seq[group_id] + 1
        self._seq[group_id] = seq
        return seq

    async def jump(self, group_id: uuid.UUID) -> None:
        """Nothing to do: the process's counter is never behind what it handed out."""

    async def _reserved(self, group_id: uuid.UUID, counter: int | None) -> None:
        """Reserve and adopt the next block (one reservation at a time, checked again)."""
        async with self._reserving:
            if (group_id in self._seq) if counter is None else self._ceiling[group_id] > counter:
                return
            reservation = await self._floors.reserve(group_id, counter)
            if counter is None or reservation.lost:
                self._seq[group_id] = max(reservation.floor, counter or 0)
            self._ceiling[group_id] = reservation.ceiling
        if reservation.lost:
            report_loss(group_id, reservation.floor)

    def _remember(self, key: tuple[uuid.UUID, uuid.UUID, str], value: str) -> None:
        now = self._clock()
        self._acks[key] = (now + IDEMPOTENCY_TTL_S, value)
        while self._acks and (
            len(self._acks) > MAX_REMEMBERED_ACKS or next(iter(self._acks.values()))[0] <= now
        ):
            self._acks.popitem(last=False)
