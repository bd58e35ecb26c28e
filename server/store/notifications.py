"""Notification, outbox event, settings and reminder-claim queries. Never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.bulk import insert_skipping_conflicts
from server.store.listing import AnySelect
from server.store.locks import for_update
from server.store.models import (
    Assignment,
    AssignmentReminder,
    EmailStatus,
    Membership,
    Message,
    Notification,
    NotificationEvent,
    NotificationSettings,
    StudyGroup,
    User,
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a notification goes to, with what its email needs."""

    user_id: uuid.UUID
    username: str
    display_name: str
    email: str
    verified: bool


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def add_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Stage outbox events; ids that exist already (a replayed batch) are skipped."""
    await insert_skipping_conflicts(session, NotificationEvent, rows, ["id"])


async def claim_event(
    session: AsyncSession, event_id: uuid.UUID, now: datetime
) -> NotificationEvent | None:
    """Mark an event processed and return it, unless it was processed already (or is absent).

    The update takes the row lock, so two fan-outs of one event cannot both claim it.
    """
    result = await session.execute(
        update(NotificationEvent)
        .where(NotificationEvent.id == event_id, NotificationEvent.processed_at.is_(None))
        .values(processed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await session.get(NotificationEvent, event_id)


async def unprocessed_events(session: AsyncSession, before: datetime) -> list[uuid.UUID]:
    """Events staged before ``before`` whose fan-out never ran (a lost job)."""
    rows = await session.scalars(
        select(NotificationEvent.id).where(
            NotificationEvent.processed_at.is_(None), NotificationEvent.created_at < before
        )
    )
    return list(rows)


def _recipients() -> AnySelect:
    return select(
        User.id, User.username, User.display_name, User.email, User.email_verified_at
    ).join(Membership, Membership.user_id == User.id)


def _as_recipients(rows: Any) -> list[Recipient]:
    return [Recipient(row[0], row[1], row[2], row[3], row[4] is not None) for row in rows]


async def members(
    session: AsyncSession,
    group_id: uuid.UUID,
    exclude: uuid.UUID | None = None,
    joined_after: datetime | None = None,
) -> list[Recipient]:
    """Every member of a group (but ``exclude``; only those joined after ``joined_after``)."""
    statement = _recipients().where(Membership.group_id == group_id)
    if exclude is not None:
        statement = statement.where(User.id != exclude)
    if joined_after is not None:
        statement = statement.where(Membership.joined_at > joined_after)
    return _as_recipients(await session.execute(statement))


async def members_named(
    session: AsyncSession, group_id: uuid.UUID, usernames: Collection[str]
) -> list[Recipient]:
    """Members of a group whose (lower-case) username is one of ``usernames``."""
    if not usernames:
        return []
    statement = _recipients().where(
        Membership.group_id == group_id, User.username.in_(sorted(usernames))
    )
    return _as_recipients(await session.execute(statement))


async def user_recipient(session: AsyncSession, user_id: uuid.UUID) -> list[Recipient]:
    """One user as a recipient (an empty list if there is no such user)."""
    statement = select(
        User.id, User.username, User.display_name, User.email, User.email_verified_at
    ).where(User.id == user_id)
    return _as_recipients(await session.execute(statement))


async def email_choices(
    session: AsyncSession, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, bool]]:
    """Stored email choices (only what differs from the defaults) of these users."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(NotificationSettings.user_id, NotificationSettings.email).where(
            NotificationSettings.user_id.in_(list(user_ids))
        )
    )
    return {row[0]: dict(row[1]) for row in rows}


async def save_email_choices(
    session: AsyncSession, user_id: uuid.UUID, choices: dict[str, bool], now: datetime
) -> None:
    """Store a user's email choices (insert or replace)."""
    statement = _insert(session)(NotificationSettings).values(
        user_id=user_id, email=choices, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"], set_={"email": choices, "updated_at": now}
        )
    )


async def add_notifications(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> set[uuid.UUID]:
    """Insert notifications; one that exists for the same user and event is skipped.

    Returns:
        The ids of the rows actually inserted (a replayed event inserts none).
    """
    if not rows:
        return set()
    statement = (
        _insert(session)(Notification)
        .on_conflict_do_nothing(index_elements=["user_id", "event_key"])
        .returning(Notification.id)
    )
    result = await session.execute(statement, list(rows))
    return set(result.scalars())


async def live_subject(
    session: AsyncSession, kind: str, group_id: uuid.UUID, key: str
) -> Message | Assignment | None:
    """The live message or assignment a ``mention`` or ``assignment.created`` is about.

    None when it was deleted. It stays locked until the transaction ends, which orders a
    fan-out with an edit or a deletion of its subject: whichever comes second sees what the
    first did (the copies, or the subject's new state).
    """
    model: type[Message | Assignment] = Message if kind == "mention" else Assignment
    query = select(model).where(
        model.id == uuid.UUID(key), model.group_id == group_id, model.deleted_at.is_(None)
    )
    subject: Message | Assignment | None = await session.scalar(await for_update(session, query))
    return subject


def event_key(kind: str, key: str) -> str:
    """A notification's key: one per recipient and ``kind``/``key`` (a subject, an occasion)."""
    return f"{kind}/{key}"


async def forget_subject(
    session: AsyncSession, kind: str, key: str, *, occasions: bool = False
) -> None:
    """Delete the notifications about a deleted subject: no read shows a copy of it.

    Args:
        session: the deletion's transaction.
        kind: the notification kind.
        key: the subject's key (a message's or an assignment's id).
        occasions: also every ``key/...`` key (a reminder per due time).
    """
    exact = Notification.event_key == event_key(kind, key)
    below = Notification.event_key.like(event_key(kind, f"{key}/%"))
    await _delete(session, Notification, or_(exact, below) if occasions else exact)


async def forget_group(session: AsyncSession, group_id: uuid.UUID) -> None:
    """Delete the notifications about a deleted group (its invites cannot be answered)."""
    await _delete(session, Notification, Notification.group_id == group_id)


async def revise_copies(
    session: AsyncSession, kind: str, key: str, changes: dict[str, Any]
) -> None:
    """Apply ``changes`` to the object copied into the notifications about one subject."""
    rows = await session.scalars(
        select(Notification).where(Notification.event_key == event_key(kind, key))
    )
    for row in rows:
        row.data = {**row.data, **changes}


def notifications_of(user_id: uuid.UUID) -> AnySelect:
    """A user's notifications."""
    return select(Notification).where(Notification.user_id == user_id)


async def get_notification(
    session: AsyncSession, notification_id: uuid.UUID
) -> Notification | None:
    """A notification by id."""
    return await session.get(Notification, notification_id)


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Mark every unread notification of the user read."""
    await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )


async def set_email_status(
    session: AsyncSession, notification_id: uuid.UUID, status: str, *, only_if: Collection[str]
) -> bool:
    """Move a notification's email to ``status`` if it is in one of ``only_if``."""
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.email_status.in_(only_if))
        .values(email_status=status)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def stale_pending_emails(session: AsyncSession, before: datetime) -> list[uuid.UUID]:
    """Notifications created before ``before`` whose email is still pending (a lost job)."""
    rows = await session.scalars(
        select(Notification.id).where(
            Notification.email_status == EmailStatus.PENDING.value,
            Notification.created_at < before,
        )
    )
    return list(rows)


_CLAIMED = and_(
    AssignmentReminder.assignment_id == Assignment.id,
    AssignmentReminder.due_at == Assignment.due_at,
)
"""A claim of an assignment at its current due time."""


def _due_between(statement: AnySelect, now: datetime, until: datetime) -> AnySelect:
    """``statement`` kept to live assignments of live groups due in ``(now, until]``."""
    return (
        statement.join(StudyGroup, StudyGroup.id == Assignment.group_id)
        .where(
            Assignment.deleted_at.is_(None),
            StudyGroup.deleted_at.is_(None),
            Assignment.due_at > now,
            Assignment.due_at <= until,
        )
        .order_by(Assignment.due_at, Assignment.id)
    )


async def due_soon(
    session: AsyncSession, now: datetime, until: datetime, limit: int
) -> list[Assignment]:
    """Live assignments of live groups due in ``(now, until]`` not yet reminded at that due time."""
    unclaimed = select(Assignment).where(~exists().where(_CLAIMED))
    rows = await session.scalars(_due_between(unclaimed, now, until).limit(limit))
    return list(rows)


async def claim_reminder(
    session: AsyncSession, assignment_id: uuid.UUID, due_at: datetime, now: datetime
) -> bool:
    """Claim the reminder of an assignment at this due time; False if it was claimed before.

    A concurrent claim waits on the primary key until the first commits, then finds it.
    """
    statement = (
        _insert(session)(AssignmentReminder)
        .values(assignment_id=assignment_id, due_at=due_at, created_at=now)
        .on_conflict_do_nothing(index_elements=["assignment_id", "due_at"])
        .returning(AssignmentReminder.assignment_id)
    )
    return (await session.execute(statement)).first() is not None


async def disarm_reminders(session: AsyncSession, assignment_id: uuid.UUID) -> None:
    """Forget an assignment's claims: its due time changed, so any due time is reminded anew."""
    await _delete(session, AssignmentReminder, AssignmentReminder.assignment_id == assignment_id)


async def _delete(
    session: AsyncSession, model: type[Notification | AssignmentReminder], where: Any
) -> None:
    await session.execute(delete(model).where(where).execution_options(synchronize_session=False))


async def reminded_since(
    session: AsyncSession, now: datetime, until: datetime, limit: int
) -> list[tuple[Assignment, datetime]]:
    """Claimed assignments due in ``(now, until]`` that someone joined after their claim.

    Each with its claim's time: those members have not been reminded at this due time.
    """
    joined_later = exists().where(
        Membership.group_id == Assignment.group_id,
        Membership.joined_at > AssignmentReminder.created_at,
    )
    claimed = (
        select(Assignment, AssignmentReminder.created_at)
        .join(AssignmentReminder, _CLAIMED)
        .where(joined_later)
    )
    rows = await session.execute(_due_between(claimed, now, until).limit(limit))
    return [(row[0], row[1]) for row in rows]
