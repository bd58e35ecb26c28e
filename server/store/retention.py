"""Batched deletes of rows past their retention period (PostgreSQL and SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.base import IdMixin
from server.store.models import (
    AccountToken,
    DeadLetter,
    DeliveryStatus,
    Notification,
    RefreshToken,
    WebhookDelivery,
)

BATCH = 1000
"""Rows deleted per statement: each statement holds its locks briefly."""


class Kind(StrEnum):
    """What a purge deletes (the metric's label)."""

    SESSIONS = "sessions"
    EMAIL_TOKENS = "email_tokens"
    WEBHOOK_DELIVERIES = "webhook_deliveries"
    DEAD_LETTERS = "dead_letters"
    READ_NOTIFICATIONS = "read_notifications"


Finished = Callable[[datetime], ColumnElement[bool]]
"""The condition of rows whose retention ran out before the cutoff."""

_FINISHED: dict[Kind, tuple[type[IdMixin], Finished]] = {
    Kind.SESSIONS: (
        RefreshToken,
        lambda cutoff: or_(RefreshToken.expires_at < cutoff, RefreshToken.revoked_at < cutoff),
    ),
    Kind.EMAIL_TOKENS: (
        AccountToken,
        lambda cutoff: or_(AccountToken.expires_at < cutoff, AccountToken.used_at < cutoff),
    ),
    Kind.WEBHOOK_DELIVERIES: (
        WebhookDelivery,
        lambda cutoff: (
            WebhookDelivery.status.in_([DeliveryStatus.SUCCEEDED.value, DeliveryStatus.DEAD.value])
            & (WebhookDelivery.updated_at < cutoff)
        ),
    ),
    Kind.DEAD_LETTERS: (DeadLetter, lambda cutoff: DeadLetter.created_at < cutoff),
    Kind.READ_NOTIFICATIONS: (Notification, lambda cutoff: Notification.read_at < cutoff),
}
"""Per kind: the table, and which of its rows are done with (expired, revoked, used,
finished, read) since before the cutoff."""


def batch_of(kind: Kind, cutoff: datetime) -> Select[uuid.UUID]:
    """The ids of at most :data:`BATCH` rows of ``kind`` done with before ``cutoff``.

    Each kind's condition is served by an index (``ix_*`` in :mod:`server.store.models`).
    """
    model, finished = _FINISHED[kind]
    return select(model.id).where(finished(cutoff)).limit(BATCH)


async def purge_batch(session: AsyncSession, kind: Kind, cutoff: datetime) -> int:
    """Delete at most :data:`BATCH` rows of ``kind`` done with before ``cutoff``; how many."""
    model, _ = _FINISHED[kind]
    result = await session.execute(
        delete(model)
        .where(model.id.in_(batch_of(kind, cutoff)))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
