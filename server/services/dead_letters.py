"""Dead letters: jobs that failed every attempt, kept with their arguments and last error.

The task middleware (:mod:`server.tasks.middleware`) records them; operators list, show,
replay and purge them with ``python -m server.admin dlq``. Replaying runs the job's reviver
first (a dead webhook delivery or notification email becomes pending again) and queues the
job afresh, with new attempts; a dead letter is replayed at most once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from server.errors import Conflict, NotFound
from server.services.clock import Clock
from server.services.events import Jobs
from server.store import dead_letters as repo
from server.store.db import Database
from server.store.models import DeadLetter

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000


class DeadLetters:
    """Records, lists and replays dead letters."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self, task: str, args: list[Any], kwargs: dict[str, Any], attempts: int, error: str
    ) -> uuid.UUID:
        """Keep a job that failed its last attempt; returns the dead letter's id."""
        values = {
            "id": uuid.uuid4(),
            "task": task,
            "args": args,
            "kwargs": kwargs,
            "attempts": attempts,
            "last_error": error[:MAX_ERROR_CHARS],
            "created_at": self._clock.now(),
        }
        async with self._db.session() as session, session.begin():
            row = await repo.add_dead_letter(session, values)
        log.error("job dead-lettered", extra={"task": task, "dead_letter": str(row.id)})
        return row.id

    async def list(self, *, limit: int = 50, waiting: bool = False) -> list[DeadLetter]:
        """Newest first; only those not replayed yet when ``waiting``."""
        async with self._db.session() as session:
            return await repo.list_dead_letters(session, limit=limit, waiting=waiting)

    async def get(self, letter_id: uuid.UUID) -> DeadLetter:
        """One dead letter.

        Raises:
            NotFound: no such dead letter.
        """
        async with self._db.session() as session:
            row = await repo.get_dead_letter(session, letter_id)
        if row is None:
            raise NotFound("No such dead letter")
        return row

    async def replay(self, letter_id: uuid.UUID, jobs: Jobs) -> DeadLetter:
        """Queue the job again with its arguments (once per dead letter).

        Raises:
            NotFound: no such dead letter.
            Conflict: it was replayed already.
        """
        row = await self.get(letter_id)
        async with self._db.session() as session, session.begin():
            if not await repo.mark_replayed(session, letter_id, self._clock.now()):
                raise Conflict("This dead letter was replayed already")
        await jobs.queue(row.task, *[str(arg) for arg in row.args])
        return row

    async def purge(self, *, replayed_only: bool) -> int:
        """Delete dead letters (every one, or only those replayed); returns how many."""
        async with self._db.session() as session, session.begin():
            return await repo.purge_dead_letters(session, replayed_only=replayed_only)

    async def waiting(self) -> int:
        """How many are not replayed yet (the ``studybuddy_dead_letters`` gauge)."""
        async with self._db.session() as session:
            return await repo.count_waiting(session)
