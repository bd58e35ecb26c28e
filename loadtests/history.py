"""How long an acked message takes to reach REST history (contract section 5: p99 <= 1 s).

A watcher polls PostgreSQL, as a history reader would see it, for the group's new rows every
10 ms and records, for each message, the time from its ``created_at`` (stamped by the node
when it accepted the send) to the poll that first saw it. The poll interval and the
millisecond truncation of ``created_at`` add up to 11 ms to each figure.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC

import asyncpg

POLL_S = 0.01


@dataclass
class HistoryWatch:
    """Polls one group's rows and keeps each message's created-to-visible lag in seconds."""

    dsn: str
    group_id: str
    lags: list[float] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)
    _contiguous: int = 0  # every seq up to this one was seen

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        connection = await asyncpg.connect(self.dsn)
        try:
            while not stop.is_set():
                await self._poll(connection)
                await asyncio.sleep(POLL_S)
        finally:
            await connection.close()

    async def _poll(self, connection: asyncpg.Connection) -> None:
        # Two nodes' persisters commit batches in any order, so a later seq can appear first.
        rows = await connection.fetch(
            "SELECT seq, created_at FROM messages WHERE group_id = $1 AND seq > $2",
            uuid.UUID(self.group_id),
            self._contiguous,
        )
        seen = time.time()
        for row in rows:
            seq, created = int(row["seq"]), row["created_at"]
            if seq in self._seen:
                continue
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            self._seen.add(seq)
            self.lags.append(seen - created.timestamp())
        while self._contiguous + 1 in self._seen:
            self._contiguous += 1

    async def wait_for(self, count: int, timeout: float) -> None:
        """Return once ``count`` messages were seen, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.lags) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)  # the list is filled by run()
