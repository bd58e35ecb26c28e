"""Group assignments with due dates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.frames import AssignmentNotice
from protocol.objects import Assignment as AssignmentObject
from server.errors import NotFound
from server.services.access import authorize
from server.services.clock import Clock
from server.services.events import Events
from server.services.groups import GroupService
from server.services.notifications import NotificationOutbox
from server.services.policy import Action
from server.services.views import assignment_view
from server.store import groups as repo
from server.store import notifications as notification_repo
from server.store.db import Database
from server.store.listing import ListQuery, ListSpec, datetime_filter, fetch_page
from server.store.models import Assignment, NotificationKind

CREATED = NotificationKind.ASSIGNMENT_CREATED

ASSIGNMENT_LIST = ListSpec(
    sorts={
        "due_at": Assignment.due_at,
        "created_at": Assignment.created_at,
        "title": Assignment.title,
    },
    default_sort="due_at",
    tiebreak=Assignment.id,
    filters={
        "due_after": datetime_filter(
            Assignment.due_at, before=False, description="due_at >= this."
        ),
        "due_before": datetime_filter(Assignment.due_at, before=True, description="due_at < this."),
    },
    search=(Assignment.title, Assignment.description),
    created=Assignment.created_at,
)


@dataclass(frozen=True, slots=True)
class AssignmentFields:
    """Assignment fields, already sanitised; None means unchanged."""

    title: str | None = None
    description: str | None = None
    due_at: datetime | None = None


class AssignmentService:
    """Assignments of a group: members read, owner and admins manage."""

    def __init__(
        self,
        db: Database,
        groups: GroupService,
        events: Events,
        outbox: NotificationOutbox,
        clock: Clock,
    ) -> None:
        self._db = db
        self._groups = groups
        self._events = events
        self._outbox = outbox
        self._clock = clock

    async def create(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, fields: AssignmentFields
    ) -> AssignmentObject:
        """Add an assignment; members are told live, the others get a notification."""
        async with self._db.session() as session, session.begin():
            await authorize(session, group_id, actor_id, Action.MANAGE_ASSIGNMENTS)
            assignment = Assignment(
                group_id=group_id,
                title=fields.title,
                description=fields.description or "",
                due_at=fields.due_at,
                created_by=actor_id,
            )
            session.add(assignment)
            await session.flush()
            staged = await self._stage(session, "created", assignment)
            events = await self._outbox.stage(
                session,
                CREATED,
                [(group_id, actor_id, str(assignment.id), assignment_view(assignment))],
            )
        await self._events.release(staged)
        await self._outbox.release(events)
        return await self._announce("created", assignment)

    async def find(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, query: ListQuery
    ) -> tuple[list[AssignmentObject], int]:
        """A group's assignments (a lag-tolerant read)."""
        async with self._db.read_session(for_user=actor_id) as session:
            await authorize(session, group_id, actor_id, Action.READ_ASSIGNMENTS)
            rows, total = await fetch_page(session, repo.assignments_of(group_id), query)
        return [assignment_view(row[0]) for row in rows], total

    async def get(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, assignment_id: uuid.UUID
    ) -> AssignmentObject:
        """One assignment."""
        async with self._db.session() as session:
            await authorize(session, group_id, actor_id, Action.READ_ASSIGNMENTS)
            assignment = await self._find(session, group_id, assignment_id)
        return assignment_view(assignment)

    async def update(
        self,
        actor_id: uuid.UUID,
        group_id: uuid.UUID,
        assignment_id: uuid.UUID,
        fields: AssignmentFields,
    ) -> AssignmentObject:
        """Change an assignment."""
        async with self._db.session() as session, session.begin():
            await authorize(session, group_id, actor_id, Action.MANAGE_ASSIGNMENTS)
            assignment = await self._find(session, group_id, assignment_id)
            if fields.due_at is not None and fields.due_at != assignment.due_at:
                await notification_repo.disarm_reminders(session, assignment.id)  # re-armed
            for name in ("title", "description", "due_at"):
                value = getattr(fields, name)
                if value is not None:
                    setattr(assignment, name, value)
            assignment.updated_at = self._clock.now()
            await session.flush()  # the row lock first: a fan-out under way waits for it
            await notification_repo.revise_copies(
                session,
                CREATED,
                str(assignment.id),
                msgspec.to_builtins(assignment_view(assignment)),
            )
            staged = await self._stage(session, "updated", assignment)
        await self._events.release(staged)
        return await self._announce("updated", assignment)

    async def delete(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, assignment_id: uuid.UUID
    ) -> None:
        """Soft-delete an assignment."""
        async with self._db.session() as session, session.begin():
            await authorize(session, group_id, actor_id, Action.MANAGE_ASSIGNMENTS)
            assignment = await self._find(session, group_id, assignment_id)
            assignment.deleted_at = self._clock.now()
            await session.flush()  # the row lock first: a fan-out under way waits for it
            await notification_repo.forget_subject(session, CREATED, str(assignment.id))
            await notification_repo.forget_subject(
                session, NotificationKind.ASSIGNMENT_DUE_SOON, str(assignment.id), occasions=True
            )
        await self._announce("deleted", assignment)

    @staticmethod
    async def _find(
        session: AsyncSession, group_id: uuid.UUID, assignment_id: uuid.UUID
    ) -> Assignment:
        assignment = await repo.get_assignment(session, group_id, assignment_id)
        if assignment is None:
            raise NotFound("Assignment not found")
        return assignment

    async def _stage(
        self, session: AsyncSession, action: str, assignment: Assignment
    ) -> list[uuid.UUID]:
        key = f"{assignment.id}/{assignment.updated_at.isoformat()}"
        item = (assignment.group_id, key, assignment_view(assignment))
        return await self._events.stage(session, [item], f"assignment.{action}")

    async def _announce(self, action: str, assignment: Assignment) -> AssignmentObject:
        view = assignment_view(assignment)
        frame = AssignmentNotice(action=action, assignment=view)  # type: ignore[arg-type]
        await self._groups.notify_members(assignment.group_id, frame)
        return view
