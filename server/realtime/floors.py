"""The seq floor: every seq a group's log hands out is first reserved in the database.

The log (Redis, or the process) counts a group's seqs; the database keeps a ceiling that
every seq handed out stays at or below (``study_groups.seq_ceiling``). The log takes seqs in
blocks: when its counter reaches its ceiling, it reserves the next block here. A log that lost
its counter (Redis restarted without AOF, flushed, failed over to a replica that missed
writes, or restored from an old copy) resumes above the database's ceiling, never below it:
no seq is handed out twice, and every new seq is above what the database holds. The loss is
logged as an error and counted; subscribers find a gap they cannot fill and are told to
reload (``recovered: false``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from server.store import messages as repo
from server.store.db import Database

log = logging.getLogger(__name__)
SEQ_BLOCK = 1000
"""Seqs reserved at a time: one database write per block per group."""
RESERVE_AHEAD_AT = SEQ_BLOCK // 2
"""Seqs left below the ceiling when a log reserves the next block ahead, in the background,
so that no send waits for the database in steady traffic."""

LOG_LOSSES = Counter(
    "studybuddy_message_log_losses_total",
    "Group logs found to have lost their counter (numbering resumed above the database).",
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Seqs a log may hand out: above ``floor``, up to ``ceiling``.

    ``lost`` means the log's counter was missing or behind: it must jump to ``floor``.
    """

    floor: int
    ceiling: int
    lost: bool


class Floors(Protocol):
    """Where a log reserves its seqs."""

    async def reserve(self, group_id: uuid.UUID, counter: int | None) -> Reservation:
        """The group's next block, given the log's counter (None: the log has none)."""
        ...

    async def release(self, group_id: uuid.UUID, counter: int) -> None:
        """Give back what was reserved above ``counter`` (a log closing cleanly)."""
        ...

    async def extend(self, group_id: uuid.UUID, ceiling: int) -> int | None:
        """Raise the ceiling a block above ``ceiling`` if it is still that; the new one, or None."""
        ...


def plan(ceiling: int, persisted: int, counter: int | None, block: int = SEQ_BLOCK) -> Reservation:
    """The next block, from the database's ceiling, its highest stored seq and the counter.

    Numbering resumes above everything that may have been handed out. The log lost seqs when
    that is above its counter or, for a log with no counter, above what the database stores
    (the unstored tail was handed out by a counter that is gone).
    """
    floor = max(ceiling, persisted, counter or 0)
    lost = floor > (persisted if counter is None else counter)
    return Reservation(floor, floor + block, lost)


def report_loss(group_id: uuid.UUID, floor: int) -> None:
    """Log and count a lost log (called by the log that adopts the jump)."""
    LOG_LOSSES.inc()
    log.error(
        "a group's message log lost its counter; numbering resumes above the database's "
        "ceiling, and subscribers are told to reload",
        extra={"group_id": str(group_id), "resumes_after_seq": floor},
    )


class SeqFloors:
    """Reserves seq blocks in the database, one short transaction each."""

    def __init__(self, db: Database, block: int = SEQ_BLOCK) -> None:
        self._db = db
        self._block = block

    async def reserve(self, group_id: uuid.UUID, counter: int | None) -> Reservation:
        """Reserve the group's next block (see :func:`plan`)."""
        async with self._db.session() as session, session.begin():
            ceiling = await repo.lock_seq_ceiling(session, group_id)
            persisted = await repo.max_seq(session, group_id)
            reservation = plan(ceiling, persisted, counter, self._block)
            await repo.set_seq_ceiling(session, group_id, reservation.ceiling)
        return reservation

    async def extend(self, group_id: uuid.UUID, ceiling: int) -> int | None:
        """Reserve the block after ``ceiling`` ahead of need; None if the ceiling moved."""
        async with self._db.session() as session, session.begin():
            if await repo.lock_seq_ceiling(session, group_id) != ceiling:
                return None
            await repo.set_seq_ceiling(session, group_id, ceiling + self._block)
        return ceiling + self._block

    async def release(self, group_id: uuid.UUID, counter: int) -> None:
        """Lower the ceiling to ``counter`` (every seq above it is unused)."""
        async with self._db.session() as session, session.begin():
            await repo.lower_seq_ceiling(session, group_id, counter)
