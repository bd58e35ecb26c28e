"""Due-soon reminders: every member once per assignment and due time.

The scheduler queues :meth:`Reminders.remind_due_soon` every tick. It finds live assignments
of live groups due within ``REMINDER_LEAD_S`` (and not past) that have no claim for their
current ``due_at``, and handles each in one transaction: claim ``(assignment, due_at)`` in
``assignment_reminders`` and insert one ``assignment.due_soon`` notification per member,
unique per member and claim (the key holds the assignment, the due time and the claim's
time). So:

- a worker killed mid-run loses only the assignment it was on, whose transaction rolls back;
  the next tick does it again, and every member is reminded exactly once;
- two workers (or two ticks) at once: the second claim waits on the first and finds it;
- a change of ``due_at`` drops the assignment's claims (``AssignmentService.update``): the
  new due time, even one reminded about before, is reminded again within the lead;
- who joins after the claim, while the assignment is still due soon, is reminded at the next
  tick (a claimed assignment with members joined since is found again; the key makes it once);
- a deleted assignment, or one of a deleted group, is never found.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
                break
        now = self._clock.now()
        async with self._db.session() as session:
            joined = await repo.reminded_since(session, now, now + self._lead, BATCH)
        for assignment, armed in joined:
            total += await self._remind(assignment, armed)
        return total

    async def _remind(self, assignment: Assignment, armed: datetime | None = None) -> int:
        """Claim one assignment's reminder and notify its members, atomically.

        With ``armed`` (the time of its claim), remind those who joined since instead.
        """
        async with self._db.session() as session, session.begin():
            if armed is None:
                armed = self._clock.now()
                if not await repo.claim_reminder(session, assignment.id, assignment.due_at, armed):
                    return 0
                members = await repo.members(session, assignment.group_id)
            else:
                members = await repo.members(session, assignment.group_id, joined_after=armed)
            created = await self._notifications.create(
                session,
                NotificationKind.ASSIGNMENT_DUE_SOON,
                assignment.group_id,
                reminder_key(assignment, armed),
                msgspec.to_builtins(assignment_view(assignment)),
                members,
            )
        await self._notifications.announce(created)
        return len(created)


def reminder_key(assignment: Assignment, armed: datetime) -> str:
    """One reminder per member and claim: the assignment, its due time, when it was claimed."""
    return f"{assignment.id}/{assignment.due_at.isoformat()}/{armed.astimezone(UTC).isoformat()}"
