"""Due-soon reminders: every member once per assignment and due time.

The scheduler queues :meth:`Reminders.remind_due_soon` every tick. It finds live assignments
of live groups due within ``REMINDER_LEAD_S`` (and not past) that have no claim for their
current ``due_at``, and handles each in one transaction: claim ``(assignment, due_at)`` in
``assignment_reminders`` and insert one ``assignment.due_soon`` notification per member
(unique per member and ``(assignment, due_at)``). So:

- a worker killed mid-run loses only the assignment it was on, whose transaction rolls back;
  the next tick does it again, and every member is reminded exactly once;
- two workers (or two ticks) at once: the second claim waits on the first and finds it;
- a changed ``due_at`` has no claim yet: it is reminded again when it comes within the lead
  (moving it back to a due time already reminded about does not remind twice);
- a deleted assignment, or one of a deleted group, is never found.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from server.services.clock import Clock
from server.services.notifications import NotificationService
from server.services.views import assignment_view
from server.store import notifications as repo
from server.store.db import Database
from server.store.models import Assignment, NotificationKind

BATCH = 100


class Reminders:
    """Finds assignments due soon and reminds their groups' members."""

    def __init__(
        self, db: Database, notifications: NotificationService, clock: Clock, *, lead_s: int
    ) -> None:
        self._db = db
        self._notifications = notifications
        self._clock = clock
        self._lead = timedelta(seconds=lead_s)

    async def remind_due_soon(self) -> int:
        """Remind every member of every assignment now due soon; returns reminders created."""
        total = 0
        while True:
            now = self._clock.now()
            async with self._db.session() as session:
                due = await repo.due_soon(session, now, now + self._lead, BATCH)
            for assignment in due:
                total += await self._remind(assignment)
            if len(due) < BATCH:
                return total

    async def _remind(self, assignment: Assignment) -> int:
        """Claim one assignment's reminder and notify its members, atomically."""
        view = assignment_view(assignment)
        key = f"{assignment.id}/{assignment.due_at.isoformat()}"
        async with self._db.session() as session, session.begin():
            if not await repo.claim_reminder(
                session, assignment.id, assignment.due_at, self._clock.now()
            ):
                return 0
            members = await repo.members(session, assignment.group_id)
            created = await self._notifications.create(
                session,
                NotificationKind.ASSIGNMENT_DUE_SOON,
                assignment.group_id,
                key,
                msgspec.to_builtins(view),
                members,
            )
        await self._notifications.announce(created)
        return len(created)
