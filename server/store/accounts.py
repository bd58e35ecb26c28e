"""Queries behind the account's GDPR export and erasure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import (
    Assignment,
    Invite,
    Membership,
    Message,
    Notification,
    NotificationEvent,
    RefreshToken,
    Role,
    StudyGroup,
    User,
    Webhook,
    WebhookDelivery,
)


async def export_rows(session: AsyncSession, user_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Everything stored about a user, as plain rows (secrets and hashes left out)."""
    queries = {
        "memberships": select(
            Membership.group_id, Membership.role, Membership.joined_at, Membership.last_read_seq
        ).where(Membership.user_id == user_id),
        "messages": select(
            Message.id,
            Message.group_id,
            Message.seq,
            Message.body,
            Message.client_msg_id,
            Message.created_at,
            Message.edited_at,
        ).where(Message.author_id == user_id, Message.deleted_at.is_(None)),
        "invites_received": select(
            Invite.id,
            Invite.group_id,
            Invite.inviter_id,
            Invite.status,
            Invite.expires_at,
            Invite.created_at,
        ).where(Invite.invitee_id == user_id),
        "invites_sent": select(
            Invite.id,
            Invite.group_id,
            Invite.invitee_id,
            Invite.status,
            Invite.expires_at,
            Invite.created_at,
        ).where(Invite.inviter_id == user_id),
        "assignments_created": select(
            Assignment.id,
            Assignment.group_id,
            Assignment.title,
            Assignment.description,
            Assignment.due_at,
            Assignment.created_at,
        ).where(Assignment.created_by == user_id, Assignment.deleted_at.is_(None)),
        "groups_owned": select(StudyGroup.id, StudyGroup.name, StudyGroup.created_at).where(
            StudyGroup.owner_id == user_id, StudyGroup.deleted_at.is_(None)
        ),
        "webhooks_created": select(
            Webhook.id, Webhook.group_id, Webhook.url, Webhook.events, Webhook.created_at
        ).where(Webhook.created_by == user_id, Webhook.deleted_at.is_(None)),
        "sessions": select(
            RefreshToken.family_id,
            RefreshToken.created_at,
            RefreshToken.expires_at,
            RefreshToken.used_at,
            RefreshToken.revoked_at,
        ).where(RefreshToken.user_id == user_id),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name, query in queries.items():
        out[name] = [dict(row._mapping) for row in await session.execute(query)]
    return out


async def hand_over_groups(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Give each group the user owns to its longest-standing admin, else member.

    A group with no one else in it is soft-deleted.
    """
    owned = await session.scalars(
        select(StudyGroup).where(StudyGroup.owner_id == user_id, StudyGroup.deleted_at.is_(None))
    )
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
            group.owner_id = successor.user_id


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


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user row; sessions and received invites go with it (ON DELETE CASCADE)."""
    await session.execute(delete(User).where(User.id == user_id))
