"""The persister: copies logged messages into the database in batches, idempotently.

Every node runs one, as a consumer of the log's persistence stream. A batch is acknowledged
only after its transaction commits; a failed write (database down) is retried with backoff,
and the entries stay pending meanwhile. Entries of a dead node's consumer are claimed by the
others once idle for a few seconds. ``ON CONFLICT DO NOTHING`` on ``(group_id, seq)`` makes
replays harmless. Webhook events of the batch's messages are staged in the same transaction,
with ids derived from the messages, so a replayed batch adds no second delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.objects import Message
from server.observability.metrics import PERSISTER_BATCHES, PERSISTER_LAG_SECONDS
from server.realtime.log import MessageLog, PersistEntry
from server.services.events import Events
from server.store.db import Database
from server.store.messages import insert_ignoring_duplicates

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0


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
        events: Events | None = None,
    ) -> None:
        self._log = message_log
        self._db = db
        self._events = events
        self._consumer = consumer
        self._batch = batch
        self._block_s = block_s
        self._linger_s = linger_s
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

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
        return len(entries)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if await self.step() < self._batch:
                    await asyncio.sleep(self._linger_s)  # let a batch build up
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False
                log.warning("persister retrying", extra={"error": repr(exc), "backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self.healthy, backoff = True, 0.1

    async def _write(self, entries: list[PersistEntry]) -> None:
        """Insert a batch; its ``message.created`` webhook events commit with it."""
        rows = [entry.row for entry in entries]
        staged: list[uuid.UUID] = []
        async with self._db.session() as session, session.begin():
            await insert_ignoring_duplicates(session, rows)
            if self._events is not None:
                staged = await self._stage_events(session, self._events, rows)
        if staged and self._events is not None:
            await self._events.release(staged)

    @staticmethod
    async def _stage_events(
        session: AsyncSession, events: Events, rows: list[dict[str, Any]]
    ) -> list[uuid.UUID]:
        """Stage the batch's webhook events; a failure there never holds messages back."""
        try:
            async with session.begin_nested():
                items = [(row["group_id"], str(row["id"]), _message(row)) for row in rows]
                return await events.stage(session, items, "message.created")
        except Exception:
            log.exception("could not stage message webhooks", extra={"messages": len(rows)})
            return []


def _message(row: dict[str, Any]) -> Message:
    return msgspec.convert({**row, "edited_at": None}, Message, strict=False)
