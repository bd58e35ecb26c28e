"""Notifications: domain events become one notification per recipient, pushed and emailed.

The flow (docs/architecture/notifications.md):

1. A change stages an outbox event (:class:`NotificationOutbox`) in its own transaction:
   an invite, an assignment, a message that mentions someone (staged by the persister's
   batch, or by an edit). The event's id derives from what happened, so a replay adds none.
2. After the commit the fan-out job is queued; it claims the event (``processed_at``), finds
   the recipients and inserts their notifications, unique per ``(user_id, event_key)``: a
   job that runs twice, or two jobs at once, create each notification once.
3. After that commit each new notification is pushed to the recipient's live sockets (the
   hub's user-directed path) and, when the recipient's settings want it and their address
   is verified, its email is queued (``email_status = pending``; the email job sends it).

Sweeps re-queue what a lost job left behind: events never fanned out, emails still pending.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.frames import NotificationNotice
from protocol.objects import EmailChoices, NotificationSettings
from protocol.objects import Notification as NotificationObject
from server.errors import NotFound
from server.observability.metrics import NOTIFICATIONS
from server.services.clock import Clock
from server.services.events import FAN_OUT_JOB, NOTIFICATION_EMAIL_JOB, Jobs
from server.services.mentions import OutboxItem, mention_items, mentioned
from server.services.notify import Notifier
from server.services.views import assignment_view, message_view, notification_view
from server.store import notifications as repo
from server.store.db import Database
from server.store.listing import (
    FilterDef,
    ListQuery,
    ListSpec,
    choice_filter,
    choice_schema,
    fetch_page,
)
from server.store.models import (
    EmailStatus,
    Message,
    Notification,
    NotificationEvent,
    NotificationKind,
)
from server.store.notifications import Recipient

log = logging.getLogger(__name__)
EVENT_NAMESPACE = uuid.UUID("6f0f9d1e-8f8a-4a55-9d1b-2b1d1c3e5a77")
DEFAULT_EMAIL: dict[str, bool] = {
    NotificationKind.INVITE_RECEIVED.value: True,
    NotificationKind.ASSIGNMENT_CREATED.value: False,
    NotificationKind.ASSIGNMENT_DUE_SOON.value: True,
    NotificationKind.MENTION.value: True,
}
STALE_EVENT = timedelta(seconds=60)
STALE_EMAIL = timedelta(minutes=10)


def _unread(value: str, _viewer: uuid.UUID | None) -> Any:
    if value.lower() != "true":
        raise ValueError("use true (leave the filter out for every notification)")
    return Notification.read_at.is_(None)


NOTIFICATION_LIST = ListSpec(
    sorts={"created_at": Notification.created_at},
    default_sort="-created_at",
    tiebreak=Notification.id,
    filters={
        "kind": choice_filter(Notification.kind, tuple(DEFAULT_EMAIL)),
        "unread": FilterDef(
            _unread, "true: only notifications not read yet.", choice_schema(("true",))
        ),
    },
    created=Notification.created_at,
)


def event_id(kind: str, key: str) -> uuid.UUID:
    """An outbox event's id, derived from the occurrence so a replayed stage adds nothing."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{kind}/{key}")


def choices_of(stored: dict[str, bool] | None) -> EmailChoices:
    """The defaults overlaid with what the user changed."""
    merged = {**DEFAULT_EMAIL, **(stored or {})}
    return msgspec.convert(merged, EmailChoices)


class NotificationOutbox:
    """Stages events in the transaction of a change; queues their fan-out after the commit."""

    def __init__(self, jobs: Jobs, clock: Clock) -> None:
        self._jobs = jobs
        self._clock = clock

    async def stage(
        self,
        session: AsyncSession,
        kind: NotificationKind,
        items: Sequence[OutboxItem],
        occurrence: str = "",
    ) -> list[uuid.UUID]:
        """Stage ``(group_id, actor_id, key, data)`` events of ``kind``; return their ids.

        ``key`` names what recipients are notified about (one notification per key and
        person); ``occurrence`` tells apart two events about the same key (an edit).
        """
        now = self._clock.now()
        rows = [
            {
                "id": event_id(kind.value, key + occurrence),
                "kind": kind.value,
                "group_id": group_id,
                "actor_id": actor_id,
                "key": key,
                "payload": msgspec.to_builtins(data),
                "created_at": now,
                "processed_at": None,
            }
            for group_id, actor_id, key, data in items
        ]
        await repo.add_events(session, rows)
        return [row["id"] for row in rows]

    async def release(self, ids: Sequence[uuid.UUID]) -> None:
        """Queue the fan-out of each event; a failure is logged (the sweep re-queues)."""
        for item in ids:
            try:
                await self._jobs.queue(FAN_OUT_JOB, str(item))
            except Exception:
                log.exception("could not queue a notification fan-out")


class MentionHook:
    """The persister's batch hook: stages ``mention`` events in the batch's transaction."""

    def __init__(self, outbox: NotificationOutbox) -> None:
        self._outbox = outbox

    async def stage(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
        """Stage an event for each message of the batch that mentions someone."""
        items = mention_items(rows)
        if not items:
            return []
        return await self._outbox.stage(session, NotificationKind.MENTION, items)

    async def release(self, staged: Sequence[uuid.UUID]) -> None:
        """Queue the fan-out of the staged events."""
        await self._outbox.release(staged)


class NotificationService:
    """Fan-out, the caller's notification list and settings, and the sweeps."""

    def __init__(
        self, db: Database, notifier: Notifier, jobs: Jobs, outbox: NotificationOutbox, clock: Clock
    ) -> None:
        self._db = db
        self._notifier = notifier
        self._jobs = jobs
        self._outbox = outbox
        self._clock = clock

    async def fan_out(self, event_id_: uuid.UUID) -> int:
        """Turn one outbox event into notifications; returns how many were new."""
        async with self._db.session() as session, session.begin():
            event = await repo.claim_event(session, event_id_, self._clock.now())
            if event is None:
                return 0  # processed already (a job run twice) or gone with its group
            data = await _current(session, event)
            if data is None:
                return 0  # its message or assignment was deleted since
            recipients = await self._recipients(session, event, data)
            kind = NotificationKind(event.kind)
            created = await self.create(session, kind, event.group_id, event.key, data, recipients)
        await self.announce(created)
        return len(created)

    async def create(
        self,
        session: AsyncSession,
        kind: NotificationKind,
        group_id: uuid.UUID | None,
        key: str,
        data: dict[str, Any],
        recipients: Sequence[Recipient],
    ) -> list[Notification]:
        """Insert one notification per recipient unless it exists; return the new ones."""
        now = self._clock.now()
        stored = await repo.email_choices(session, [r.user_id for r in recipients])
        rows = [
            {
                "id": uuid.uuid4(),
                "user_id": person.user_id,
                "kind": kind.value,
                "group_id": group_id,
                "event_key": repo.event_key(kind.value, key),
                "data": data,
                "created_at": now,
                "read_at": None,
                "email_status": _email_status(person, stored.get(person.user_id), kind),
            }
            for person in recipients
        ]
        inserted = await repo.add_notifications(session, rows)
        NOTIFICATIONS.labels(kind.value).inc(len(inserted))
        return [Notification(**row) for row in rows if row["id"] in inserted]

    async def announce(self, created: Sequence[Notification]) -> None:
        """Push each new notification to its recipient's sockets; queue the wanted emails."""
        for row in created:
            frame = NotificationNotice(notification=notification_view(row))
            await self._notifier.to_user(row.user_id, frame)
        for row in created:
            if row.email_status == EmailStatus.PENDING.value:
                await self._queue_email(row.id)

    async def mine(
        self, user_id: uuid.UUID, query: ListQuery
    ) -> tuple[list[NotificationObject], int]:
        """The caller's notifications (newest first unless sorted otherwise)."""
        async with self._db.session() as session:
            rows, total = await fetch_page(session, repo.notifications_of(user_id), query)
        return [notification_view(row[0]) for row in rows], total

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> NotificationObject:
        """Mark one of the caller's notifications read (again: unchanged).

        Raises:
            NotFound: not the caller's notification.
        """
        async with self._db.session() as session, session.begin():
            row = await repo.get_notification(session, notification_id)
            if row is None or row.user_id != user_id:
                raise NotFound("Notification not found")
            row.read_at = row.read_at or self._clock.now()
        return notification_view(row)

    async def mark_all_read(self, user_id: uuid.UUID) -> None:
        """Mark every unread notification of the caller read."""
        async with self._db.session() as session, session.begin():
            await repo.mark_all_read(session, user_id, self._clock.now())

    async def settings(self, user_id: uuid.UUID) -> NotificationSettings:
        """The caller's email choices (defaults where they changed nothing)."""
        async with self._db.session() as session:
            stored = await repo.email_choices(session, [user_id])
        return NotificationSettings(email=choices_of(stored.get(user_id)))

    async def update_settings(
        self, user_id: uuid.UUID, changes: dict[str, bool]
    ) -> NotificationSettings:
        """Change some email choices; the others stay as they were."""
        async with self._db.session() as session, session.begin():
            stored = (await repo.email_choices(session, [user_id])).get(user_id, {})
            merged = {**stored, **changes}
            await repo.save_email_choices(session, user_id, merged, self._clock.now())
        return NotificationSettings(email=choices_of(merged))

    async def requeue_stalled(self) -> int:
        """Queue again fan-outs and emails that a lost job left behind; returns how many."""
        now = self._clock.now()
        async with self._db.session() as session:
            events = await repo.unprocessed_events(session, now - STALE_EVENT)
            emails = await repo.stale_pending_emails(session, now - STALE_EMAIL)
        await self._outbox.release(events)
        for item in emails:
            await self._queue_email(item)
        return len(events) + len(emails)

    async def _queue_email(self, notification_id: uuid.UUID) -> None:
        try:
            await self._jobs.queue(NOTIFICATION_EMAIL_JOB, str(notification_id))
        except Exception:  # still pending: the sweep queues it again
            log.exception("could not queue a notification email")

    @staticmethod
    async def _recipients(
        session: AsyncSession, event: NotificationEvent, data: dict[str, Any]
    ) -> list[Recipient]:
        """Who an event about ``data`` notifies (never the one who caused it)."""
        if event.kind == NotificationKind.INVITE_RECEIVED.value:
            return await repo.user_recipient(session, uuid.UUID(event.payload["invitee_id"]))
        if event.group_id is None:
            return []
        if event.kind == NotificationKind.MENTION.value:
            named = await repo.members_named(session, event.group_id, mentioned(data["body"]))
            return [person for person in named if person.user_id != event.actor_id]
        return await repo.members(session, event.group_id, exclude=event.actor_id)


SUBJECT_KINDS = frozenset(
    {NotificationKind.MENTION.value, NotificationKind.ASSIGNMENT_CREATED.value}
)
"""Kinds whose notifications copy a message or an assignment."""


async def _current(session: AsyncSession, event: NotificationEvent) -> dict[str, Any] | None:
    """What an event's notifications copy: its subject as it is now (None: deleted since)."""
    if event.kind not in SUBJECT_KINDS or event.group_id is None:
        return event.payload
    subject = await repo.live_subject(session, event.kind, event.group_id, event.key)
    if subject is None:
        return None
    view = message_view(subject) if isinstance(subject, Message) else assignment_view(subject)
    copied: dict[str, Any] = msgspec.to_builtins(view)
    return copied


def _email_status(
    person: Recipient, stored: dict[str, bool] | None, kind: NotificationKind
) -> str | None:
    """``pending`` when this kind is emailed to this person (verified address), else None."""
    wanted = {**DEFAULT_EMAIL, **(stored or {})}.get(kind.value, False)
    return EmailStatus.PENDING.value if wanted and person.verified else None
