"""The persister: copies logged messages into the database in batches, idempotently.

Every node runs one, as a consumer of the log's persistence stream. A batch is acknowledged
only after its transaction commits; a failed write (database down) is retried with backoff,
and the entries stay pending meanwhile. Entries of a dead node's consumer are claimed by the
others once idle for a few seconds. ``ON CONFLICT DO NOTHING`` on ``(group_id, seq)`` makes
replays harmless. A :class:`BatchHook` (webhooks) stages its work in the same transaction,
with ids derived from the messages, so a replayed batch adds no second delivery. After a
commit the batch's message ids are announced (see :mod:`server.realtime.persisted`), so that
a REST post can answer once its message is in history.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.observability.metrics import PERSISTER_BATCHES, PERSISTER_LAG_SECONDS
from server.realtime.log import MessageLog, PersistEntry
from server.store.db import Database
from server.store.messages import insert_ignoring_duplicates

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0

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
    """Moves messages from the log to the database."""

    def __init__(
        self,
        message_log: MessageLog,
        db: Database,
        consumer: str,
        *,
        batch: int = 500,
        block_s: float = 0.25,
        linger_s: float = 0.25,
        hook: BatchHook | None = None,
        announce: Announce | None = None,
    ) -> None:
        self._log = message_log
        self._db = db
        self._hook = hook
        self._announce = announce
        self._consumer = consumer
        self._batch = batch
        self._block_s = block_s
        self._linger_s = linger_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        """Run in the background."""
        self._task = asyncio.create_task(self._run(), name="persister")

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop, after writing what is pending for this consumer (bounded by ``drain_s``)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            try:
                if not await self.step(block_s=0.01):
                    return
            except Exception:
                log.exception("persister could not drain")
                return

    def wake(self) -> None:
        """Cut the current linger short: someone waits for a message to reach history."""
        self._wake.set()

    async def step(self, block_s: float | None = None) -> int:
        """Persist one batch; return how many entries it held."""
        entries = await self._log.pending(
            self._consumer, self._batch, self._block_s if block_s is None else block_s
        )
        if entries:
            await self._write(entries)
            await self._log.acknowledge([entry.entry_id for entry in entries])
            PERSISTER_BATCHES.inc()
            PERSISTER_LAG_SECONDS.observe(max(0.0, time.time() - entries[0].logged_at))
            await self._announced([entry.row["id"] for entry in entries])
        return len(entries)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if await self.step() < self._batch:
                    await self._linger()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("persister retrying", extra={"error": repr(exc), "backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 0.1

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
        """Insert a batch; the hook's work commits with it."""
        rows = [entry.row for entry in entries]
        staged: list[uuid.UUID] = []
        async with self._db.session() as session, session.begin():
            await insert_ignoring_duplicates(session, rows)
            if self._hook is not None:
                staged = await self._stage(session, self._hook, rows)
        if staged and self._hook is not None:
            await self._hook.release(staged)

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
