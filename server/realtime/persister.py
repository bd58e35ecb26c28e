"""The persister: copies logged messages into the database in batches, idempotently.

The log's persistence stream is split in partitions; a node drains the partitions whose
lease it holds (:mod:`server.realtime.leases`), one reader per partition. A reader first
adopts whatever other readers left unacknowledged (and again every few seconds), then reads
batches. A batch is acknowledged only after its transaction commits; a failed write
(database down) is retried with backoff, and the entries stay pending meanwhile.
``ON CONFLICT DO NOTHING`` on ``(group_id, seq)`` makes replays harmless. Each
:class:`BatchHook` (webhooks, mentions) stages its work in the same transaction, with ids
derived from the messages, so a replayed batch adds nothing twice. After a commit the
batch's message ids are announced (see :mod:`server.realtime.persisted`), so that a REST
post can answer once its message is in history.

A batch the database refuses for its data (not an outage: an SQLSTATE of class 22, 23 or
54) is written entry by entry, and an entry refused on its own is set aside: logged as an
error with its row, counted in ``studybuddy_persister_refused_total`` and acknowledged, so
one message the database cannot hold never stops history for every group behind it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from server.aio import cancel_and_wait
from server.infra import sqlstate
from server.observability.metrics import (
    PERSISTER_BATCHES,
    PERSISTER_LAG_SECONDS,
    PERSISTER_PARTITIONS,
    PERSISTER_REFUSED,
)
from server.realtime.leases import LEASE_MS, Leases
from server.realtime.log import MessageLog, PersistEntry
from server.store.db import Database
from server.store.messages import displaced, insert_ignoring_duplicates

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0
READOPT_S = 5.0
"""How often a reader takes over what other readers of its partition left pending."""
IDLE_BLOCK_S = 2.0
"""How long a reader whose last read found nothing waits for an entry (an entry ends the
wait at once). A cluster node reads many partitions, most of them quiet most of the time;
each empty read is a wake-up and a round trip. Well below the Redis client's 5 s socket
timeout."""

REFUSED_DATA = ("22", "23", "54")
"""SQLSTATE classes of a database that refuses the data itself: data exception, integrity
constraint violation, program limit exceeded. Retrying such a write can never succeed."""

Announce = Callable[[list[uuid.UUID]], Awaitable[None]]
"""Told the ids of the messages of each committed batch."""


class BatchHook(Protocol):
    """Work recorded in the transaction of a batch, and released after it commits."""

    async def stage(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
        """Record the work of the batch's message ``rows`` in ``session``; return its ids."""
        ...

    async def release(self, staged: Sequence[uuid.UUID]) -> None:
        """Hand the staged work on, after the commit; never raises."""
        ...


class Persister:
    """Moves messages from the log to the database, for the partitions this node holds."""

    def __init__(
        self,
        message_log: MessageLog,
        db: Database,
        consumer: str,
        leases: Leases,
        *,
        batch: int = 500,
        block_s: float = 0.25,
        linger_s: float = 0.25,
        idle_block_s: float = IDLE_BLOCK_S,
        hooks: Sequence[BatchHook] = (),
        announce: Announce | None = None,
        balance_s: float = LEASE_MS / 3000,
        readopt_s: float = READOPT_S,
    ) -> None:
        self._log = message_log
        self._db = db
        self._hooks = tuple(hooks)
        self._announce = announce
        self._consumer = consumer
        self._leases = leases
        self._batch = batch
        self._block_s = block_s
        self._linger_s = linger_s
        self._idle_block_s = idle_block_s
        self._balance_s = balance_s
        self._readopt_s = readopt_s
        self._supervisor: asyncio.Task[None] | None = None
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions this node drains now."""
        return frozenset(self._readers)

    def start(self) -> None:
        """Run in the background: balance the leases, a reader per partition held."""
        self._supervisor = asyncio.create_task(self._supervise(), name="persister")

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop, write what is pending in the held partitions (within ``drain_s``), give back."""
        self._stopping = True
        await cancel_and_wait([self._supervisor, *self._readers.values()])
        deadline = time.monotonic() + drain_s
        for partition in sorted(self._readers):
            await self._drain(partition, deadline)
        self._readers.clear()
        PERSISTER_PARTITIONS.set(0)
        try:
            await self._leases.release_all()
        except Exception as exc:  # they expire by themselves
            log.warning("could not give the partition leases back", extra={"error": repr(exc)})

    def wake(self) -> None:
        """Cut the current linger short: someone waits for a message to reach history."""
        self._wake.set()

    async def step(self, partition: int, block_s: float | None = None, *, own: bool = True) -> int:
        """Persist one batch of ``partition``; return how many entries it held."""
        block = self._block_s if block_s is None else block_s
        entries = await self._log.pending(partition, self._consumer, self._batch, block, own=own)
        if entries:
            written = await self._write_or_set_aside(entries)
            await self._log.acknowledge(partition, [entry.entry_id for entry in entries])
            PERSISTER_BATCHES.inc()
            PERSISTER_LAG_SECONDS.observe(max(0.0, time.time() - entries[0].logged_at))
            await self._announced([entry.row["id"] for entry in written])
        return len(entries)

    async def _write_or_set_aside(self, entries: list[PersistEntry]) -> list[PersistEntry]:
        """Write the batch; one the database refuses for its data, entry by entry.

        Returns the entries written: the others were refused on their own and set aside.
        Raises whatever else the database raised (an outage: the batch is retried).
        """
        try:
            await self._write(entries)
        except DBAPIError as exc:
            if not refused_data(exc):
                raise
        else:
            return entries
        written: list[PersistEntry] = []
        for entry in entries:
            try:
                await self._write([entry])
            except DBAPIError as exc:
                if not refused_data(exc):
                    raise
                _set_aside(entry, exc)
            else:
                written.append(entry)
        return written

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                self._follow(await self._leases.balance())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the readers; leases expire if this goes on
                log.warning("could not balance the persister leases", extra={"error": repr(exc)})
            await asyncio.sleep(self._balance_s)

    def _follow(self, held: frozenset[int]) -> None:
        """Start a reader for each partition newly held; stop those of partitions lost."""
        for partition in held - self._readers.keys():
            self._readers[partition] = asyncio.create_task(
                self._read(partition), name=f"persister-{partition}"
            )
        for partition in self._readers.keys() - held:
            self._readers.pop(partition).cancel()
        PERSISTER_PARTITIONS.set(len(held))

    async def _read(self, partition: int) -> None:
        """Adopt what other readers left, then persist batches until cancelled.

        Adoption runs again every ``readopt_s``: two nodes may both read a partition for a
        moment (a lease that expired under a stalled node, a Redis that lost the leases),
        and what the other one read and never acknowledged would otherwise stay pending.
        """
        backoff, adopted_at, own, block = 0.1, -math.inf, True, self._block_s
        while not self._stopping:
            try:
                if time.monotonic() - adopted_at >= self._readopt_s:
                    own = own or await self._log.adopt(partition, self._consumer) > 0
                    adopted_at = time.monotonic()
                count = await self.step(partition, block, own=own)
                own = own and count == self._batch  # until the own entries are exhausted
                block = self._block_s if count else self._idle_block_s
                if count < self._batch:
                    await self._linger()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("persister retrying", extra={"error": repr(exc), "backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff, adopted_at, own = min(backoff * 2, MAX_BACKOFF_S), -math.inf, True
                continue
            backoff = 0.1

    async def _drain(self, partition: int, deadline: float) -> None:
        """Persist what is left in a partition before the node goes."""
        while time.monotonic() < deadline:
            try:
                if not await self.step(partition, block_s=0.01):
                    return
            except Exception:
                log.exception("persister could not drain", extra={"partition": partition})
                return

    async def _linger(self) -> None:
        """Let a batch build up, unless woken."""
        try:
            await asyncio.wait_for(self._wake.wait(), self._linger_s)
        except TimeoutError:
            return
        self._wake.clear()

    async def _announced(self, ids: list[uuid.UUID]) -> None:
        if self._announce is None:
            return
        try:
            await self._announce(ids)
        except Exception:  # the batch is committed; a waiter times out instead
            log.warning("could not announce a persisted batch", extra={"messages": len(ids)})

    async def _write(self, entries: list[PersistEntry]) -> None:
        """Insert a batch; the hooks' work commits with it and is released after."""
        rows = [entry.row for entry in entries]
        async with self._db.session() as session, session.begin():
            stored = await insert_ignoring_duplicates(session, rows)
            lost = await displaced(session, rows)
            # tombstones (an erased author's messages) are stored, never announced to hooks
            live = [row for row in stored if row["deleted_at"] is None and row not in lost]
            staged = [await self._stage(session, hook, live) for hook in self._hooks]
        await self._db.wrote(*{row["author_id"] for row in live})  # read-your-writes
        for hook, ids in zip(self._hooks, staged, strict=True):
            if ids:
                await hook.release(ids)
        if lost:
            await self._seqs_reused(lost)

    async def _seqs_reused(self, lost: list[dict[str, Any]]) -> None:
        """Messages whose seq the database already holds: Redis lost writes and counted again.

        They are lost (their seq is another message's); numbering of their groups jumps above
        the database so that no later message meets the same fate.
        """
        log.error(
            "acked messages lost: Redis handed out their seqs again after losing writes",
            extra={"messages": [str(row["id"]) for row in lost]},
        )
        for group_id in {row["group_id"] for row in lost}:
            try:
                await self._log.jump(group_id)
            except Exception:
                log.exception(
                    "could not move the group's numbering on", extra={"group": str(group_id)}
                )

    @staticmethod
    async def _stage(
        session: AsyncSession, hook: BatchHook, rows: list[dict[str, Any]]
    ) -> list[uuid.UUID]:
        """Stage the hook's work in a savepoint: a failure there never holds messages back."""
        try:
            async with session.begin_nested():
                return await hook.stage(session, rows)
        except Exception:
            log.exception("could not stage the batch's hook work", extra={"messages": len(rows)})
            return []


def refused_data(exc: DBAPIError) -> bool:
    """Whether the database refused the data itself (see :data:`REFUSED_DATA`)."""
    state = sqlstate(exc)
    return state is not None and state[:2] in REFUSED_DATA


def _set_aside(entry: PersistEntry, exc: DBAPIError) -> None:
    """An acked message the database will never take: say so loudly, with what it held."""
    PERSISTER_REFUSED.inc()
    log.error(
        "the database refused an acked message; it is set aside, not stored",
        extra={
            "message_id": str(entry.row["id"]),
            "group_id": str(entry.row["group_id"]),
            "seq": entry.row["seq"],
            "row": repr(entry.row),
            "error": repr(exc.orig),
        },
    )
