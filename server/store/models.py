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
    text,
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


class NotificationKind(StrEnum):
    """What a notification is about (contract section 3, Notifications)."""

    INVITE_RECEIVED = "invite.received"
    ASSIGNMENT_CREATED = "assignment.created"
    ASSIGNMENT_DUE_SOON = "assignment.due_soon"
    MENTION = "mention"


class EmailStatus(StrEnum):
    """Where a notification's email stands; null when none is wanted."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    SKIPPED = "skipped"


class TokenPurpose(StrEnum):
    """What an emailed account token is good for."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password  # nosec B105


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
    email_verified_at: Mapped[datetime | None] = mapped_column(default=None)


REVOKED = text("revoked_at IS NOT NULL")
USED = text("used_at IS NOT NULL")
READ = text("read_at IS NOT NULL")
FINISHED = text("status IN ('succeeded', 'dead')")
"""Partial-index conditions: the rows the retention purge looks for (server/store/retention)."""


class RefreshToken(IdMixin, Base):
    """One refresh token of a family; only its SHA-256 is stored."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index(
            "ix_refresh_tokens_revoked_at",
            "revoked_at",
            postgresql_where=REVOKED,
            sqlite_where=REVOKED,
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    expires_at: Mapped[datetime] = mapped_column(index=True)
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


def trigram_index(name: str, column: Any, *leading: Any) -> None:
    """A PostgreSQL ``pg_trgm`` GIN index on ``sb_search_text(column)``, what search matches.

    ``leading`` columns come first (``btree_gin``), for searches that always filter on them.
    """
    expression = func.sb_search_text(column).label("searched")
    Index(
        name,
        *leading,
        expression,
        postgresql_using="gin",
        postgresql_ops={"searched": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


trigram_index("ix_study_groups_name_trgm", StudyGroup.name)
trigram_index("ix_study_groups_description_trgm", StudyGroup.description)


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


LIVE = text("deleted_at IS NULL")
Index(
    "ix_messages_group_id_seq_live",
    Message.group_id,
    Message.seq,
    postgresql_where=LIVE,
    sqlite_where=LIVE,
)
Index(
    "ix_messages_group_id_created_at_live",
    Message.group_id,
    Message.created_at,
    Message.seq,
    postgresql_where=LIVE,
    sqlite_where=LIVE,
)
trigram_index("ix_messages_group_id_body_trgm", Message.body, Message.group_id)


class Assignment(IdMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A piece of work with a due date, set by a group's owner or admins."""

    __tablename__ = "assignments"
    __table_args__ = (Index(None, "group_id", "due_at"),)

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("study_groups.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(index=True)
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


STALLED = text("status IN ('pending', 'failed')")


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One event to deliver to one webhook, with its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_stalled",
            "updated_at",
            postgresql_where=STALLED,
            sqlite_where=STALLED,
        ),
        Index(
            "ix_webhook_deliveries_finished",
            "updated_at",
            postgresql_where=FINISHED,
            sqlite_where=FINISHED,
        ),
    )

    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class AccountToken(IdMixin, Base):
    """An emailed single-use token (verification or reset); only its SHA-256 is stored."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        Index("ix_account_tokens_used_at", "used_at", postgresql_where=USED, sqlite_where=USED),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    """The address the token was sent to (verification verifies this address)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


UNPROCESSED = text("processed_at IS NULL")


class NotificationEvent(IdMixin, Base):
    """A domain event waiting to become notifications (the fan-out's outbox).

    Staged in the transaction of the change, fanned out by a job; ``processed_at`` is the
    fan-out's claim, so running the job twice adds nothing.
    """

    __tablename__ = "notification_events"
    __table_args__ = (
        Index(
            "ix_notification_events_unprocessed",
            "created_at",
            postgresql_where=UNPROCESSED,
            sqlite_where=UNPROCESSED,
        ),
    )

    kind: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("study_groups.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    key: Mapped[str] = mapped_column(String(200))
    """Names the occurrence; recipients' notifications are unique per key."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)


EMAIL_PENDING = text("email_status = 'pending'")


class Notification(IdMixin, Base):
    """Something a user should know about, pushed live and maybe emailed."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "event_key"),
        Index(None, "user_id", "created_at"),
        Index(
            "ix_notifications_email_pending",
            "created_at",
            postgresql_where=EMAIL_PENDING,
            sqlite_where=EMAIL_PENDING,
        ),
        Index("ix_notifications_read_at", "read_at", postgresql_where=READ, sqlite_where=READ),
        # Equality and prefix (LIKE 'key/%') lookups of a subject's notifications.
        Index(
            "ix_notifications_event_key",
            "event_key",
            postgresql_ops={"event_key": "text_pattern_ops"},
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("study_groups.id", ondelete="CASCADE"), index=True
    )
    event_key: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    email_status: Mapped[str | None] = mapped_column(String(16), default=None)


class NotificationSettings(Base):
    """A user's email choices per notification kind (only what differs from the defaults)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[dict[str, bool]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=NOW
    )


class AssignmentReminder(Base):
    """The claim of one due-soon reminder: an assignment at one due time, reminded once."""

    __tablename__ = "assignment_reminders"

    assignment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)


class DeadLetter(IdMixin, Base):
    """A job that failed every attempt: what it was called with and how it last failed."""

    __tablename__ = "dead_letters"

    task: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW, index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(default=None)


class PendingErasure(Base):
    """An erased account's copies outside the database, until they are erased too.

    Written in the erasure's transaction; deleted once the Redis keys, the message log's
    recovery windows and the nodes' caches have been reached. A row left behind (Redis was
    away) is retried by the ``accounts.finish_erasures`` sweep.
    """

    __tablename__ = "pending_erasures"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """The erased account (no foreign key: its row is gone)."""
    group_ids: Mapped[list[str]] = mapped_column(JSON)
    """Groups the user was in or wrote in: their windows and access caches to reach."""
    deleted_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW, index=True)
