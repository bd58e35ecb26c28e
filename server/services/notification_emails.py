"""Notification emails: one per notification whose kind the recipient emails, sent by the worker.

A notification is created with ``email_status = pending`` when its recipient's settings
want its kind and their address is verified. The email job sends it and marks it ``sent``;
settings switched off (or an address no longer verified) meanwhile make it ``skipped``.
After the last failed attempt it is ``dead`` (and a dead letter); replaying the dead letter
makes it pending again. Sending is at least once: a worker killed between the SMTP server's
acceptance and the ``sent`` mark sends it again (with the same ``Message-ID``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.services.clock import Clock
from server.services.mail import Letter, Postman, one_line, plain
from server.services.notifications import DEFAULT_EMAIL
from server.store import groups as group_repo
from server.store import notifications as repo
from server.store import users as user_repo
from server.store.db import Database
from server.store.models import EmailStatus, Notification, NotificationKind, User

SENDABLE = (EmailStatus.PENDING.value, EmailStatus.DEAD.value)
Words = tuple[str, str, str]
"""Subject, headline and detail of an email."""
ACTOR_FIELDS = ("inviter_id", "author_id", "created_by")
"""Where a notification's data names who caused it (an invite, a message, an assignment)."""
NOBODY = "Someone"
"""The actor of an email whose actor is unknown (an erased account)."""


def readable_time(value: object) -> str:
    """A stored ISO time for a reader: ``Mon 14 Dec 2026, 02:53 UTC`` (as stored if not one)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return when.strftime("%a %d %b %Y, %H:%M UTC")


def _invite(data: dict[str, object], group: str, actor: str) -> Words:
    return (
        f"{actor} invited you to {group}",
        f"{actor} invited you to join the study group {group}.",
        f"Accept or decline it in StudyBuddy before {readable_time(data.get('expires_at'))}.",
    )


def _assignment(data: dict[str, object], group: str, actor: str) -> Words:
    title = plain(str(data.get("title", "")))
    due = readable_time(data.get("due_at"))
    return (
        f"New assignment in {group}: {title}",
        f"{actor} set {title} in {group}, due {due}.",
        plain(str(data.get("description", ""))),
    )


def _due_soon(data: dict[str, object], group: str, _actor: str) -> Words:
    title = plain(str(data.get("title", "")))
    return (
        f"Due soon: {title}",
        f"{title} in {group} is due {readable_time(data.get('due_at'))}.",
        plain(str(data.get("description", ""))),
    )


def _mention(data: dict[str, object], group: str, actor: str) -> Words:
    return (
        f"{actor} mentioned you in {group}",
        f"{actor} mentioned you in {group}:",
        plain(str(data.get("body", ""))),
    )


WORDS: dict[str, Callable[[dict[str, object], str, str], Words]] = {
    NotificationKind.INVITE_RECEIVED.value: _invite,
    NotificationKind.ASSIGNMENT_CREATED.value: _assignment,
    NotificationKind.ASSIGNMENT_DUE_SOON.value: _due_soon,
    NotificationKind.MENTION.value: _mention,
}


class NotificationEmails:
    """Sends the email of one notification (the ``email.notification`` job)."""

    def __init__(self, db: Database, postman: Postman, clock: Clock) -> None:
        self._db = db
        self._postman = postman
        self._clock = clock

    async def send(self, notification_id: uuid.UUID) -> str | None:
        """Send the notification's email if it is still wanted; returns its new status.

        Raises:
            MailError: the transport failed (the job retries, then dead-letters).
        """
        async with self._db.session() as session:
            row = await repo.get_notification(session, notification_id)
            if row is None or row.email_status not in SENDABLE:
                return None
            user = await user_repo.get_user(session, row.user_id)
            stored = (await repo.email_choices(session, [row.user_id])).get(row.user_id, {})
            group = await group_repo.get_group(session, row.group_id) if row.group_id else None
            actor = await _actor(session, row.data)
        if user is None or not self._wanted(user, stored, row.kind):
            return await self._mark(notification_id, EmailStatus.SKIPPED)
        group_name = plain(group.name) if group is not None else "StudyBuddy"
        await self._postman.deliver(self._letter(row, user, group_name, actor))
        return await self._mark(notification_id, EmailStatus.SENT)

    async def mark_dead(self, notification_id: uuid.UUID) -> None:
        """Its last attempt failed: stop the sweep from queueing it again."""
        await self._mark(notification_id, EmailStatus.DEAD, only_if=(EmailStatus.PENDING.value,))

    async def revive(self, notification_id: uuid.UUID) -> None:
        """A dead letter is replayed: the email is pending again."""
        await self._mark(notification_id, EmailStatus.PENDING, only_if=(EmailStatus.DEAD.value,))

    @staticmethod
    def _wanted(user: User, stored: dict[str, bool], kind: str) -> bool:
        verified = user.email_verified_at is not None
        return verified and {**DEFAULT_EMAIL, **stored}.get(kind, False)

    def _letter(self, row: Notification, user: User, group: str, actor: str) -> Letter:
        subject, headline, detail = WORDS[row.kind](row.data, group, actor)
        composer = self._postman.composer
        link = composer.link(_view(row))
        return Letter(
            kind=row.kind,
            to_address=user.email,
            to_name=plain(user.display_name),
            subject=one_line(subject),
            template="notification",
            values={
                "name": plain(user.display_name),
                "headline": headline,
                "detail": detail,
                "link": link,
                "kind": row.kind,
                "settings": composer.settings_link,
            },
            message_key=f"notification.{row.id}",
        )

    async def _mark(
        self,
        notification_id: uuid.UUID,
        status: EmailStatus,
        only_if: tuple[str, ...] = SENDABLE,
    ) -> str:
        async with self._db.session() as session, session.begin():
            await repo.set_email_status(session, notification_id, status.value, only_if=only_if)
        return status.value


async def _actor(session: AsyncSession, data: dict[str, object]) -> str:
    """The display name of who caused the notification, or :data:`NOBODY`."""
    named = next((data[field] for field in ACTOR_FIELDS if data.get(field)), None)
    try:
        actor_id = uuid.UUID(str(named))
    except ValueError:
        return NOBODY
    actor = await user_repo.get_user(session, actor_id)
    return plain(actor.display_name or actor.username) if actor is not None else NOBODY


def _view(row: Notification) -> str:
    """Where the email's link opens the web app: an invite's answer, or the group."""
    if row.kind == NotificationKind.INVITE_RECEIVED.value:
        return "/invites"  # the invitee is not in the group yet: its page would not open
    return f"/groups/{row.group_id}" if row.group_id else "/notifications"
