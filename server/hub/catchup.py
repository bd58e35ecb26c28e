"""Catching a subscription up: replays and gap fills, streamed under flow control.

A subscription behind its group's stream (a resubscribe with ``since_seq``, a gap seen in the
live stream, a bus reconnect) reads what it missed through the hub's
:class:`~server.hub.ports.Recovery` and writes it in chunks, waiting for the client to take
each one. Live frames wait in the subscription's cursor meanwhile and follow in seq order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine, Iterable
from typing import Any

from protocol.errors import CloseCode
from server.hub.connection import Connection
from server.hub.cursor import Cursor, Step
from server.hub.outlet import Outgoing
from server.hub.ports import Recovery
from server.observability.metrics import SLOW_CONSUMER_CLOSES
from server.realtime.envelope import Kind
from server.realtime.log import Recent

log = logging.getLogger(__name__)
REPLAY_CHUNK = 64
"""Replayed frames written before waiting for the client to take them (flow control)."""
REPLAY_STALL_S = 10.0
"""A client that takes nothing of a replay for this long is a slow consumer (4010)."""
RESUBSCRIBE = "missed too much; resubscribe with since_seq"


class CatchUp:
    """Replays missed frames into subscriptions; gap fills run as background tasks."""

    def __init__(self, recovery: Recovery) -> None:
        self._recovery = recovery
        self._tasks: set[asyncio.Task[None]] = set()

    async def replay(
        self, conn: Connection, cursor: Cursor[Outgoing], items: list[Outgoing], upto: int
    ) -> bool:
        """Write replayed frames up to ``upto`` in chunks, letting the client take each one.

        A replay never counts against the slow-consumer limit while the client reads; one that
        stops reading is closed (4010) and False is returned.
        """
        for start in range(0, len(items), REPLAY_CHUNK):
            chunk = items[start : start + REPLAY_CHUNK]
            end = upto if start + REPLAY_CHUNK >= len(items) else chunk[-1].seq
            for item in cursor.replayed(chunk, end):
                conn.offer(item)
            if not await conn.drained(REPLAY_STALL_S):
                SLOW_CONSUMER_CLOSES.inc()
                conn.close(CloseCode.SLOW_CONSUMER, "slow consumer", flush=False)
                return False
        cursor.replayed((), upto)
        return True

    def apply(self, conn: Connection, group_id: uuid.UUID, step: Step[Outgoing]) -> None:
        """Carry out what a cursor decided when its replay ended."""
        for item in step.write:
            conn.offer(item)
        if step.fill_from is not None:
            self.fill(conn, group_id, step.fill_from)

    def fill(self, conn: Connection, group_id: uuid.UUID, after: int) -> None:
        """Fill a subscription's gap after ``after``, in the background."""
        self._spawn(self._fill(conn, group_id, after))

    async def stop(self) -> None:
        """Cancel the fills under way."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _fill(self, conn: Connection, group_id: uuid.UUID, after: int) -> None:
        """Write what a subscription missed after ``after``, then what arrived meanwhile."""
        try:
            last = await self._recovery.last_seq(group_id)
            replay = await self._recovery.replay(group_id, after, last)
        except Exception:
            log.exception("gap recovery failed")
            conn.close(CloseCode.SERVICE_RESTART, "recovery failed; resubscribe with since_seq")
            return
        cursor = conn.groups.get(group_id)
        if cursor is None:
            return  # unsubscribed meanwhile
        if not replay.recovered:
            conn.close(CloseCode.SERVICE_RESTART, RESUBSCRIBE)
            return
        if not await self.replay(conn, cursor, messages(replay.frames), last):
            return
        step = cursor.release()
        if step.fill_from is not None and step.fill_from <= after:  # the log cannot fill it
            conn.close(CloseCode.SERVICE_RESTART, "recovery failed; resubscribe with since_seq")
            return
        self.apply(conn, group_id, step)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def messages(frames: Iterable[Recent]) -> list[Outgoing]:
    """Frames read from the log, ready to write."""
    return [Outgoing.from_json(Kind.MESSAGE, f.seq, f.frame, "message") for f in frames]
