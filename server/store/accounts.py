"""Queries behind the account's GDPR export and erasure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.listing import AnySelect
from server.store.locks import for_update
from server.store.models import (
    AccountToken,
    Assignment,
    DeadLetter,
    Invite,
    Membership,
    Message,
    Notification,
    NotificationEvent,
    NotificationSettings,
    PendingErasure,
    RefreshToken,
    Role,
    StudyGroup,
    User,
    Webhook,
    WebhookDelivery,
)


def export_sections(user_id: uuid.UUID) -> dict[str, AnySelect]:
    """One query per list of the account export, in the document's order.

    Columns are named as ``protocol.export`` names them; secrets and hashes are left out.
    """
    return {
        "sessions": select(
            RefreshToken.family_id,
            func.min(RefreshToken.created_at).label("started_at"),
            func.max(func.coalesce(RefreshToken.used_at, RefreshToken.created_at)).label(
                "last_used_at"
            ),
            func.max(RefreshToken.expires_at).label("expires_at"),
            func.max(RefreshToken.revoked_at).label("revoked_at"),
            (func.count() - 1).label("refreshes"),
        )
        .where(RefreshToken.user_id == user_id)
        .group_by(RefreshToken.family_id)
        .order_by(func.min(RefreshToken.created_at), RefreshToken.family_id),
        "memberships": select(
            Membership.group_id,
            StudyGroup.name.label("group_name"),
            Membership.role,
            Membership.joined_at,
            Membership.last_read_seq,
        )
        .join(StudyGroup, StudyGroup.id == Membership.group_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.joined_at, Membership.group_id),
        "messages": select(
            Message.id,
            Message.group_id,
            Message.seq,
            Message.body,
            Message.client_msg_id,
            Message.created_at,
            Message.edited_at,
            Message.deleted_at,
        )
        .where(Message.author_id == user_id)
        .order_by(Message.group_id, Message.seq),
        "invites_sent": _invites(Invite.inviter_id == user_id),
        "invites_received": _invites(Invite.invitee_id == user_id),
        "assignments_created": select(
            Assignment.id,
            Assignment.group_id,
            Assignment.title,
            Assignment.description,
            Assignment.due_at,
            Assignment.created_at,
            Assignment.updated_at,
            Assignment.deleted_at,
        )
        .where(Assignment.created_by == user_id)
        .order_by(Assignment.created_at, Assignment.id),
        "groups_owned": select(
            StudyGroup.id,
            StudyGroup.name,
            StudyGroup.description,
            StudyGroup.subject,
            StudyGroup.visibility,
            StudyGroup.created_at,
            StudyGroup.updated_at,
            StudyGroup.deleted_at,
        )
        .where(StudyGroup.owner_id == user_id)
        .order_by(StudyGroup.created_at, StudyGroup.id),
        "webhooks_created": select(
            Webhook.id,
            Webhook.group_id,
            Webhook.url,
            Webhook.events,
            Webhook.active,
            Webhook.created_at,
            Webhook.deleted_at,
        )
        .where(Webhook.created_by == user_id)
        .order_by(Webhook.created_at, Webhook.id),
        "notifications": select(
            Notification.id,
            Notification.kind,
            Notification.group_id,
            Notification.data,
            Notification.created_at,
            Notification.read_at,
            Notification.email_status,
        )
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at, Notification.id),
        "email_tokens": select(
            AccountToken.purpose,
            AccountToken.email,
            AccountToken.created_at,
            AccountToken.expires_at,
            AccountToken.used_at,
        )
        .where(AccountToken.user_id == user_id)
        .order_by(AccountToken.created_at, AccountToken.id),
    }


def _invites(who: ColumnElement[bool]) -> AnySelect:
    return (
        select(
            Invite.id,
            Invite.group_id,
            Invite.inviter_id,
            Invite.invitee_id,
            Invite.status,
            Invite.expires_at,
            Invite.created_at,
            Invite.updated_at,
        )
        .where(who)
        .order_by(Invite.created_at, Invite.id)
    )


async def stream_rows(
    session: AsyncSession, query: AnySelect, batch: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """Run ``query`` on a server-side cursor and yield its rows ``batch`` at a time."""
    result = await session.stream(query.execution_options(yield_per=batch))
    async for rows in result.partitions():
        yield [dict(row._mapping) for row in rows]


async def notification_settings(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The user's stored notification choices, or None when they kept the defaults."""
    row = (
        await session.execute(
            select(NotificationSettings.email, NotificationSettings.updated_at).where(
                NotificationSettings.user_id == user_id
            )
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def hand_over_groups(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> dict[uuid.UUID, uuid.UUID]:
    """Give each group the user owns to its longest-standing admin, else member.

    A group with no one else in it is soft-deleted.

    Returns:
        The new owner of each group handed over.
    """
    owned = await session.scalars(
        select(StudyGroup).where(StudyGroup.owner_id == user_id, StudyGroup.deleted_at.is_(None))
    )
    heirs: dict[uuid.UUID, uuid.UUID] = {}
    for group in owned:
        successor = await session.scalar(
            select(Membership)
            .where(Membership.group_id == group.id, Membership.user_id != user_id)
            .order_by(
                (Membership.role == Role.ADMIN.value).desc(),
                Membership.joined_at,
                Membership.user_id,
            )
            .limit(1)
        )
        if successor is None:
            group.deleted_at = now
        else:
            successor.role = Role.OWNER.value
            group.owner_id = heirs[group.id] = successor.user_id
    return heirs


async def leave_all_groups(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete the user's memberships, keeping member counts right; return the groups."""
    group_ids = list(
        await session.scalars(select(Membership.group_id).where(Membership.user_id == user_id))
    )
    if group_ids:
        await session.execute(
            update(StudyGroup)
            .where(StudyGroup.id.in_(group_ids))
            .values(member_count=StudyGroup.member_count - 1)
            .execution_options(synchronize_session=False)
        )
        await session.execute(delete(Membership).where(Membership.user_id == user_id))
    return group_ids


async def erase_messages(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """Blank the user's messages, keeping seq-only tombstones so history stays gapless.

    Returns the groups they were in.
    """
    groups = list(
        await session.scalars(
            select(Message.group_id).where(Message.author_id == user_id).distinct()
        )
    )
    await session.execute(
        update(Message)
        .where(Message.author_id == user_id)
        .values(body="", author_id=None, deleted_at=now)
        .execution_options(synchronize_session=False)
    )
    return groups


SNAPSHOTS: tuple[tuple[type[Notification | NotificationEvent | WebhookDelivery], str], ...] = (
    (Notification, "data"),
    (NotificationEvent, "payload"),
    (WebhookDelivery, "payload"),
)
"""Rows holding a copy of an object as it was (``mention`` data, ``message.created`` and
``member.joined`` payloads)."""
ERASED_FIELDS: dict[str, dict[str, Any]] = {
    "author_id": {"author_id": None, "body": ""},
    "user_id": {"username": "", "display_name": ""},
}
"""What a snapshot naming the user in a field loses: a message its author and text, a member
their names."""


async def erase_snapshots(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Blank the user's text and names in every snapshot row; return how many changed."""
    changed = 0
    for model, attribute in SNAPSHOTS:
        column = getattr(model, attribute)
        for field, blanks in ERASED_FIELDS.items():
            rows = await session.scalars(
                select(model).where(column[field].as_string() == str(user_id))
            )
            for row in rows:
                setattr(row, attribute, {**getattr(row, attribute), **blanks})
                changed += 1
    return changed


async def forget_dead_letters(session: AsyncSession, email: str) -> None:
    """Failed jobs called with the user's address (a reset email's) go: it is personal data.

    Other failed jobs keep only ids, and stay for an operator to replay.
    """
    mentions = func.lower(cast(DeadLetter.args, Text)).contains(email.lower(), autoescape=True)
    await session.execute(delete(DeadLetter).where(mentions))


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Lock the user row until the transaction ends; False if it is gone already.

    Two erasures of one account at once (a double click): the second waits for the first
    and finds no user, instead of erasing again and staging a second pending erasure.
    """
    query = await for_update(session, select(User.id).where(User.id == user_id))
    return await session.scalar(query) is not None


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user row; sessions and received invites go with it (ON DELETE CASCADE)."""
    await session.execute(delete(User).where(User.id == user_id))


def stage_erasure(
    session: AsyncSession, user_id: uuid.UUID, group_ids: Iterable[uuid.UUID], now: datetime
) -> None:
    """Record, in the erasure's transaction, the copies outside the database left to erase."""
    groups = [str(g) for g in dict.fromkeys(group_ids)]
    session.add(PendingErasure(user_id=user_id, group_ids=groups, deleted_at=now))


async def pending_erasures(
    session: AsyncSession, staged_before: datetime, limit: int
) -> list[PendingErasure]:
    """Erasures staged before ``staged_before`` whose copies are not all erased, oldest first."""
    rows = await session.scalars(
        select(PendingErasure)
        .where(PendingErasure.created_at < staged_before)
        .order_by(PendingErasure.created_at)
        .limit(limit)
    )
    return list(rows)


async def erasure_done(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every copy of the erased account is gone: forget the erasure."""
    await session.execute(delete(PendingErasure).where(PendingErasure.user_id == user_id))
