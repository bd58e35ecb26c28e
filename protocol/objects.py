"""The contract's objects (section 2), shared by REST responses and socket frames."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

Role = Literal["owner", "admin", "member"]
Visibility = Literal["public", "private"]
InviteStatus = Literal["pending", "accepted", "declined", "expired"]
DeliveryStatus = Literal["pending", "succeeded", "failed", "dead"]
WebhookEvent = Literal[
    "message.created",
    "invite.created",
    "assignment.created",
    "assignment.updated",
    "member.joined",
]
WEBHOOK_EVENTS: tuple[str, ...] = get_args(WebhookEvent)
NotificationKind = Literal[
    "invite.received", "assignment.created", "assignment.due_soon", "mention"
]
NOTIFICATION_KINDS: tuple[str, ...] = get_args(NotificationKind)


class UserPublic(msgspec.Struct, frozen=True, kw_only=True):
    """A user as anyone sees them."""

    id: uuid.UUID
    username: str
    display_name: str
    bio: str
    avatar_url: str | None
    created_at: datetime


class UserPrivate(UserPublic, frozen=True, kw_only=True):
    """The caller's own user, with account fields."""

    email: str
    mfa_enabled: bool
    updated_at: datetime
    email_verified: bool = False


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """A study group, with the caller's role in it (or null)."""

    id: uuid.UUID
    name: str
    description: str
    subject: str
    visibility: Visibility
    max_members: int | None
    member_count: int
    owner_id: uuid.UUID | None
    role: Role | None
    created_at: datetime
    updated_at: datetime


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A membership as listed."""

    user_id: uuid.UUID
    username: str
    display_name: str
    role: Role
    joined_at: datetime


class GroupMember(Member, frozen=True, kw_only=True):
    """A member with their group: the data of a ``member.joined`` webhook event."""

    group_id: uuid.UUID


class Invite(msgspec.Struct, frozen=True, kw_only=True):
    """An invitation into a group."""

    id: uuid.UUID
    group_id: uuid.UUID
    inviter_id: uuid.UUID | None
    invitee_id: uuid.UUID
    status: InviteStatus
    expires_at: datetime
    created_at: datetime
    group_name: str = ""
    """The group's name (HTML-escaped as stored): the invitee may not read the group itself.

    Empty in snapshots taken before it existed."""


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A chat message."""

    id: uuid.UUID
    group_id: uuid.UUID
    seq: int
    author_id: uuid.UUID | None
    body: str
    client_msg_id: str
    created_at: datetime
    edited_at: datetime | None


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """A group assignment."""

    id: uuid.UUID
    group_id: uuid.UUID
    title: str
    description: str
    due_at: datetime
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook subscription; ``secret`` only in the creation response."""

    id: uuid.UUID
    group_id: uuid.UUID
    url: str
    events: list[WebhookEvent]
    active: bool
    created_at: datetime
    secret: str | msgspec.UnsetType = msgspec.UNSET


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One webhook delivery and its attempts."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class WebhookEventBody(msgspec.Struct, frozen=True, kw_only=True):
    """What a webhook delivery POSTs; ``id`` is the delivery's, the same on every attempt."""

    id: uuid.UUID
    type: WebhookEvent
    created_at: datetime
    data: dict[str, Any]


class UnreadCount(msgspec.Struct, frozen=True, kw_only=True):
    """Unread state of one group for the caller."""

    group_id: uuid.UUID
    unread: int
    last_seq: int
    last_read_seq: int


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """Something the caller should know about; ``data`` is the invite, assignment or message."""

    id: uuid.UUID
    kind: NotificationKind
    group_id: uuid.UUID | None
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class EmailChoices(msgspec.Struct, frozen=True, kw_only=True):
    """Whether each kind of notification is also emailed (to a verified address)."""

    invite_received: bool = msgspec.field(name="invite.received")
    assignment_created: bool = msgspec.field(name="assignment.created")
    assignment_due_soon: bool = msgspec.field(name="assignment.due_soon")
    mention: bool


class NotificationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's notification settings."""

    email: EmailChoices
