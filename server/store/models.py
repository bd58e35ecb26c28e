"""Tables. One class per table; relationships are loaded explicitly by repositories."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.store.base import NOW, Base, IdMixin, SoftDeleteMixin, TimestampMixin, utcnow


class Role(StrEnum):
    """A member's role in a study group, strongest first."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Visibility(StrEnum):
    """Who can find and join a group."""

    PUBLIC = "public"
    PRIVATE = "private"


class InviteStatus(StrEnum):
    """Lifecycle of an invite."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class DeliveryStatus(StrEnum):
    """Lifecycle of a webhook delivery."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


class User(IdMixin, TimestampMixin, Base):
    """An account. Email and username are stored lower-cased, so unique case-insensitively."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    bio: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(300), default=None)
    password_hash: Mapped[str] = mapped_column(String(100))
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_secret: Mapped[str | None] = mapped_column(String(300), default=None)
    mfa_last_step: Mapped[int] = mapped_column(BigInteger, default=0)


class RefreshToken(IdMixin, Base):
    """One refresh token of a family; only its SHA-256 is stored."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class StudyGroup(IdMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A study group; ``member_count`` is maintained by the membership services."""

    __tablename__ = "study_groups"
    __table_args__ = (
        CheckConstraint("max_members IS NULL OR max_members >= 2", name="max_members_min"),
    )

    name: Mapped[str] = mapped_column(Text, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16), index=True)
    max_members: Mapped[int | None] = mapped_column(Integer, default=None)
    member_count: Mapped[int] = mapped_column(Integer, default=0, index=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    seq_ceiling: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Every seq the message log has handed out for this group is at or below this."""


Index("ix_study_groups_lower_subject", func.lower(StudyGroup.subject))


class Membership(Base):
    """A user's membership of a group, with their read marker."""

    __tablename__ = "memberships"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    last_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Invite(IdMixin, TimestampMixin, Base):
    """An invitation of one user into a group."""

    __tablename__ = "invites"
    __table_args__ = (Index(None, "invitee_id", "status"),)

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_groups.id", ondelete="CASCADE"), index=True
    )
    inviter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    invitee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=InviteStatus.PENDING.value)
    expires_at: Mapped[datetime]


class Message(IdMixin, Base):
    """A chat message; ``seq`` is gapless per group and assigned by the message pipeline."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("group_id", "seq"),
        Index(None, "group_id", "author_id", "client_msg_id"),
    )

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("study_groups.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    client_msg_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    edited_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Assignment(IdMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A piece of work with a due date, set by a group's owner or admins."""

    __tablename__ = "assignments"
    __table_args__ = (Index(None, "group_id", "due_at"),)

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("study_groups.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Webhook(IdMixin, TimestampMixin, SoftDeleteMixin, Base):
    """An outgoing webhook subscription of a group."""

    __tablename__ = "webhooks"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_groups.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One event to deliver to one webhook, with its attempts."""

    __tablename__ = "webhook_deliveries"

    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
