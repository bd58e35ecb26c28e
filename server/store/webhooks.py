"""Webhook and delivery queries (never commit)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.store.bulk import insert_skipping_conflicts
from server.store.listing import AnySelect
from server.store.models import (
    DeliveryStatus,
    Membership,
    StudyGroup,
    Webhook,
    WebhookDelivery,
)


def creator_manages(managers: Collection[str]) -> ColumnElement[bool]:
    """The webhook's creator still has one of ``managers`` in its group."""
    creators = aliased(Membership)  # the query around may join the viewer's membership
    return exists().where(
        creators.group_id == Webhook.group_id,
        creators.user_id == Webhook.created_by,
        creators.role.in_(managers),
    )


def webhooks_managed_by(user_id: uuid.UUID, roles: Collection[str]) -> AnySelect:
    """Live webhooks of the live groups where the user has one of ``roles``.

    Each with whether it is active: switched on, and its creator still manages the group
    (one who no longer does took the webhook's feed with them).
    """
    active = and_(Webhook.active.is_(True), creator_manages(roles))
    return (
        select(Webhook, active.label("feeding"))
        .join(StudyGroup, StudyGroup.id == Webhook.group_id)
        .join(
            Membership,
            (Membership.group_id == Webhook.group_id) & (Membership.user_id == user_id),
        )
        .where(
            Webhook.deleted_at.is_(None),
            StudyGroup.deleted_at.is_(None),
            Membership.role.in_(roles),
        )
    )


async def get_managed_webhook(
    session: AsyncSession, webhook_id: uuid.UUID, user_id: uuid.UUID, roles: Collection[str]
) -> Webhook | None:
    """A live webhook the user manages, or None (absent, deleted, or not theirs to see)."""
    result: Webhook | None = await session.scalar(
        webhooks_managed_by(user_id, roles).where(Webhook.id == webhook_id)
    )
    return result


async def count_live(session: AsyncSession, group_id: uuid.UUID) -> int:
    """How many webhooks a group has (not deleted, active or not)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Webhook)
        .where(Webhook.group_id == group_id, Webhook.deleted_at.is_(None))
    )
    return int(count or 0)


def deliveries_of(webhook_id: uuid.UUID) -> AnySelect:
    """A webhook's deliveries."""
    return select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)


def _feeding(managers: Collection[str]) -> AnySelect:
    """Live, active webhooks of live groups whose creator still manages the group.

    A member kicked, demoted or erased takes their webhooks' feed of the group with them.
    """
    return (
        select(Webhook)
        .join(StudyGroup, StudyGroup.id == Webhook.group_id)
        .where(
            Webhook.deleted_at.is_(None),
            Webhook.active.is_(True),
            StudyGroup.deleted_at.is_(None),
            creator_manages(managers),
        )
    )


async def subscribers(
    session: AsyncSession, group_ids: Collection[uuid.UUID], event: str, managers: Collection[str]
) -> list[Webhook]:
    """The webhooks of these groups that asked for ``event`` and still receive their events."""
    rows = await session.scalars(_feeding(managers).where(Webhook.group_id.in_(group_ids)))
    return [hook for hook in rows if event in hook.events]


async def still_feeding(
    session: AsyncSession, webhook_id: uuid.UUID, managers: Collection[str]
) -> bool:
    """Whether the webhook still receives its group's events (checked before each attempt)."""
    found = await session.scalar(_feeding(managers).where(Webhook.id == webhook_id))
    return found is not None


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert deliveries; ids that exist already (a replayed event) are skipped."""
    await insert_skipping_conflicts(session, WebhookDelivery, rows, ["id"])


async def stalled_deliveries(session: AsyncSession, before: datetime) -> list[uuid.UUID]:
    """Deliveries still to be attempted that nobody touched since ``before``."""
    rows = await session.scalars(
        select(WebhookDelivery.id).where(
            WebhookDelivery.status.in_((DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)),
            WebhookDelivery.updated_at < before,
        )
    )
    return list(rows)


async def get_delivery(
    session: AsyncSession, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, Webhook] | None:
    """A delivery and its webhook (deleted webhooks included)."""
    row = (
        await session.execute(
            select(WebhookDelivery, Webhook)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id == delivery_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def record_attempt(
    session: AsyncSession, delivery_id: uuid.UUID, attempts: int, values: dict[str, Any]
) -> bool:
    """Store an attempt's outcome if the delivery still has ``attempts``; False otherwise."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempts)
        .values(**values)
    )
    return getattr(result, "rowcount", 0) == 1


async def revive_delivery(session: AsyncSession, delivery_id: uuid.UUID, now: datetime) -> None:
    """Reset a dead delivery to pending with no attempts."""
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.DEAD.value,
        )
        .values(status=DeliveryStatus.PENDING.value, attempts=0, updated_at=now)
    )
