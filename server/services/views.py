"""Rows to contract objects."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from protocol import objects
from protocol.codec import JSON
from protocol.frames import MessageCreated
from server.realtime.log import tombstone
from server.store import models


def profile_key(user_id: uuid.UUID) -> str:
    """The cache key of a user's public profile (:func:`user_public`, encoded)."""
    return f"user:{user_id}"


def user_public(user: models.User) -> objects.UserPublic:
    """What anyone may see of a user."""
    return objects.UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        created_at=user.created_at,
    )


def user_private(user: models.User) -> objects.UserPrivate:
    """The caller's own view of their account."""
    return objects.UserPrivate(
        **msgspec.structs.asdict(user_public(user)),
        email=user.email,
        mfa_enabled=user.mfa_enabled,
        updated_at=user.updated_at,
        email_verified=user.email_verified_at is not None,
    )


def group_view(group: models.StudyGroup, role: str | None) -> objects.Group:
    """A group as the caller sees it, with their role."""
    return objects.Group(
        id=group.id,
        name=group.name,
        description=group.description,
        subject=group.subject,
        visibility=group.visibility,  # type: ignore[arg-type]
        max_members=group.max_members,
        member_count=group.member_count,
        owner_id=group.owner_id,
        role=role,  # type: ignore[arg-type]
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def member_view(membership: models.Membership, username: str, display_name: str) -> objects.Member:
    """A listed member."""
    return objects.Member(
        user_id=membership.user_id,
        username=username,
        display_name=display_name,
        role=membership.role,  # type: ignore[arg-type]
        joined_at=membership.joined_at,
    )


def invite_view(invite: models.Invite, now: datetime, group_name: str) -> objects.Invite:
    """An invite (with its group's name); a pending one past its expiry reads as expired."""
    status = invite.status
    if status == models.InviteStatus.PENDING.value and invite.expires_at <= now:
        status = models.InviteStatus.EXPIRED.value
    return objects.Invite(
        id=invite.id,
        group_id=invite.group_id,
        inviter_id=invite.inviter_id,
        invitee_id=invite.invitee_id,
        status=status,  # type: ignore[arg-type]
        expires_at=invite.expires_at,
        created_at=invite.created_at,
        group_name=group_name,
    )


def assignment_view(assignment: models.Assignment) -> objects.Assignment:
    """An assignment."""
    return objects.Assignment(
        id=assignment.id,
        group_id=assignment.group_id,
        title=assignment.title,
        description=assignment.description,
        due_at=assignment.due_at,
        created_by=assignment.created_by,
        created_at=assignment.created_at,
        updated_at=assignment.updated_at,
    )


def message_view(message: models.Message) -> objects.Message:
    """A message."""
    return objects.Message(
        id=message.id,
        group_id=message.group_id,
        seq=message.seq,
        author_id=message.author_id,
        body=message.body,
        client_msg_id=message.client_msg_id,
        created_at=message.created_at,
        edited_at=message.edited_at,
    )


def created_frame(message: models.Message) -> MessageCreated:
    """The ``message`` frame of a stored message."""
    return MessageCreated(
        group_id=message.group_id,
        seq=message.seq,
        message_id=message.id,
        author_id=message.author_id,
        body=message.body,
        created_at=message.created_at,
        client_msg_id=message.client_msg_id,
    )


def replay_frame(message: models.Message) -> bytes:
    """A stored message as a replay shows it; a deleted one as its tombstone."""
    if message.deleted_at is not None:
        return tombstone(message.group_id, message.id, message.seq)
    return JSON.encode(created_frame(message))


def webhook_view(hook: models.Webhook, active: bool | None = None) -> objects.Webhook:
    """A webhook, without its secret; ``active`` when more than its switch decides it."""
    return objects.Webhook(
        id=hook.id,
        group_id=hook.group_id,
        url=hook.url,
        events=list(hook.events),  # type: ignore[arg-type]
        active=hook.active if active is None else active,
        created_at=hook.created_at,
    )


def delivery_view(delivery: models.WebhookDelivery) -> objects.Delivery:
    """A delivery and its attempts so far."""
    return objects.Delivery(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        status=delivery.status,  # type: ignore[arg-type]
        attempts=delivery.attempts,
        response_status=delivery.response_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def notification_view(row: models.Notification) -> objects.Notification:
    """A notification as its recipient sees it."""
    return objects.Notification(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        group_id=row.group_id,
        data=row.data,
        read_at=row.read_at,
        created_at=row.created_at,
    )
