"""Recovery reads: what a resubscribing client missed, from the log's window or the database.

The hub asks through its :class:`~server.hub.ports.Recovery` interface; this is the
implementation the container hands it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from server.realtime.log import MessageLog, Recent, Replay
from server.services.clock import Clock
from server.services.views import replay_frame
from server.singleflight import SingleFlight
from server.store import messages as repo
from server.store.db import Database


class RecoveryReader:
    """Missed messages, within the recovery window (``RECOVERY_WINDOW_SIZE``, ``_S``)."""

    def __init__(
        self, log: MessageLog, db: Database, clock: Clock, *, window: int, window_s: int
    ) -> None:
        self._log = log
        self._db = db
        self._clock = clock
        self._window = window
        self._window_s = window_s
        self._last: SingleFlight[uuid.UUID, int] = SingleFlight()
        self._replays: SingleFlight[tuple[uuid.UUID, int, int], Replay] = SingleFlight()

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The highest seq assigned in the group (one read for concurrent askers)."""
        return await self._last.do(group_id, lambda: self._log.last_seq(group_id))

    async def replay(self, group_id: uuid.UUID, since_seq: int, upto: int) -> Replay:
        """Missed messages in ``(since_seq, upto]``: from the recovery window, else the database.

        More missed than the window holds (count or age): nothing, and not recovered. Sockets
        asking for the same range at once (a reconnect storm) share one read.
        """
        key = (group_id, since_seq, upto)
        return await self._replays.do(key, lambda: self._read(group_id, since_seq, upto))

    async def _read(self, group_id: uuid.UUID, since_seq: int, upto: int) -> Replay:
        if since_seq >= upto:
            return Replay(upto, [], True)
        if upto - since_seq > self._window:
            return Replay(upto, [], False)
        recent = [
            f for f in await self._log.recent(group_id, since_seq, self._window) if f.seq <= upto
        ]
        older: list[Recent] = []
        oldest_ms = recent[0].created_ms if recent else None
        first = recent[0].seq if recent else upto + 1
        if first > since_seq + 1:
            found = await self._from_database(group_id, since_seq, first - 1)
            if found is None:
                return Replay(upto, [], False)
            older, oldest_ms = found
        horizon = (self._clock.time() - self._window_s) * 1000
        if oldest_ms is None or oldest_ms < horizon:
            return Replay(upto, [], False)
        return Replay(upto, older + recent, True)

    async def _from_database(
        self, group_id: uuid.UUID, after: int, upto: int
    ) -> tuple[list[Recent], int] | None:
        """Frames of ``(after, upto]`` from the database, if it holds all of them."""
        async with self._db.session() as session:
            rows = await repo.messages_after(session, group_id, after, upto)
        if [row.seq for row in rows] != list(range(after + 1, upto + 1)):
            return None
        frames = [Recent(row.seq, replay_frame(row), _ms(row.created_at)) for row in rows]
        return frames, _ms(rows[0].created_at)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
