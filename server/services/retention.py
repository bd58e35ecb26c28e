"""Retention: rows kept past their use are deleted on a schedule, a batch at a time.

Each kind has a period (``RETENTION_*_DAYS``); a run deletes, per kind, the rows done with
(expired, revoked, used, finished, read) more than that long ago, in batches of
:data:`~server.store.retention.BATCH` rows, one transaction each, until none is left. A run
is idempotent (what is gone is not found again) and a crash half-way only leaves work for the
next run. Rows deleted are counted in ``studybuddy_retention_purged_total{kind}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from server.observability.metrics import RETENTION_PURGED
from server.services.clock import Clock
from server.store import retention as repo
from server.store.db import Database
from server.store.retention import BATCH, Kind


class Retention:
    """Purges every kind past its period."""

    def __init__(self, db: Database, clock: Clock, days: Mapping[str, int]) -> None:
        """Purges with ``days`` of retention per kind (:class:`Kind` values, settings')."""
        self._db = db
        self._clock = clock
        self._days = {Kind(kind): period for kind, period in days.items()}

    async def purge(self) -> dict[str, int]:
        """Run every kind's purge; return how many rows of each went."""
        return {kind.value: await self.purge_kind(kind) for kind in self._days}

    async def purge_kind(self, kind: Kind) -> int:
        """Delete the kind's rows past its period, batch by batch; return how many."""
        cutoff = self._clock.now() - timedelta(days=self._days[kind])
        total = 0
        while True:
            async with self._db.session() as session, session.begin():
                deleted = await repo.purge_batch(session, kind, cutoff)
            total += deleted
            RETENTION_PURGED.labels(kind=kind.value).inc(deleted)
            if deleted < BATCH:
                return total
