"""Webhooks: a group's owner or admins subscribe a URL to its events (management).

What happens to the events afterwards is :mod:`server.services.deliveries`.
"""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol import objects
from server.errors import Conflict, NotFound
from server.security import signing
from server.security.crypto import SecretBox
from server.services.access import authorize
from server.services.clock import Clock
from server.services.deliveries import WEBHOOK_MANAGERS, WebhookDeliveries
from server.services.policy import Action
from server.services.views import delivery_view, webhook_view
from server.store import webhooks as repo
from server.store.db import Database
from server.store.listing import ListQuery, ListSpec, choice_filter, fetch_page
from server.store.models import DeliveryStatus, Webhook, WebhookDelivery

WEBHOOKS_PER_GROUP = 20
"""The most webhooks a group may have: each is an outgoing request per event (GitHub's cap)."""
WEBHOOK_LIST = ListSpec(
    sorts={"created_at": Webhook.created_at},
    default_sort="-created_at",
    tiebreak=Webhook.id,
    created=Webhook.created_at,
)
DELIVERY_LIST = ListSpec(
    sorts={"created_at": WebhookDelivery.created_at, "updated_at": WebhookDelivery.updated_at},
    default_sort="-created_at",
    tiebreak=WebhookDelivery.id,
    filters={
        "status": choice_filter(WebhookDelivery.status, tuple(s.value for s in DeliveryStatus)),
        "event": choice_filter(WebhookDelivery.event, objects.WEBHOOK_EVENTS),
    },
    created=WebhookDelivery.created_at,
)


class WebhookService:
    """Webhook subscriptions and their delivery logs."""

    def __init__(
        self, db: Database, box: SecretBox, clock: Clock, deliveries: WebhookDeliveries
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._deliveries = deliveries

    async def create(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, url: str, events: list[str]
    ) -> objects.Webhook:
        """Subscribe ``url`` to a group's ``events``; the secret is shown only now.

        The caller's right is checked before the URL is resolved, so a caller who may not
        manage the group cannot use the answer to learn which host names resolve, or where.

        Raises:
            NotFound: no such group, or a private one the caller is not in.
            Forbidden: the caller may not manage the group's webhooks.
            ValidationFailed: the URL is not http(s) or does not resolve to public addresses.
            Conflict: the group has :data:`WEBHOOKS_PER_GROUP` webhooks already.
        """
        async with self._db.session() as session:
            await authorize(session, group_id, actor_id, Action.MANAGE_WEBHOOKS)
            await _room_for_one(session, group_id)
        await self._deliveries.check_url(url)  # no transaction held while it resolves
        secret = signing.new_secret()
        async with self._db.session() as session, session.begin():
            await authorize(session, group_id, actor_id, Action.MANAGE_WEBHOOKS, lock=True)
            await _room_for_one(session, group_id)  # under the group's lock: no race past it
            hook = Webhook(
                group_id=group_id,
                url=url,
                events=list(dict.fromkeys(events)),
                secret=self._box.seal(secret),
                active=True,
                created_by=actor_id,
            )
            session.add(hook)
        return msgspec.structs.replace(webhook_view(hook), secret=secret)

    async def find(
        self, actor_id: uuid.UUID, query: ListQuery
    ) -> tuple[list[objects.Webhook], int]:
        """Webhooks of the groups the caller owns or administers."""
        async with self._db.session() as session:
            rows, total = await fetch_page(
                session, repo.webhooks_managed_by(actor_id, WEBHOOK_MANAGERS), query
            )
        return [webhook_view(row[0], bool(row[1])) for row in rows], total

    async def delete(self, actor_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
        """Remove a webhook; its pending deliveries are not attempted again."""
        async with self._db.session() as session, session.begin():
            hook = await self._managed(session, webhook_id, actor_id)
            hook.deleted_at = self._clock.now()
            hook.active = False

    async def deliveries(
        self, actor_id: uuid.UUID, webhook_id: uuid.UUID, query: ListQuery
    ) -> tuple[list[objects.Delivery], int]:
        """A webhook's deliveries, newest first by default."""
        async with self._db.session() as session:
            await self._managed(session, webhook_id, actor_id)
            rows, total = await fetch_page(session, repo.deliveries_of(webhook_id), query)
        return [delivery_view(row[0]) for row in rows], total

    @staticmethod
    async def _managed(
        session: AsyncSession, webhook_id: uuid.UUID, actor_id: uuid.UUID
    ) -> Webhook:
        hook = await repo.get_managed_webhook(session, webhook_id, actor_id, WEBHOOK_MANAGERS)
        if hook is None:
            raise NotFound("Webhook not found")
        return hook


async def _room_for_one(session: AsyncSession, group_id: uuid.UUID) -> None:
    if await repo.count_live(session, group_id) >= WEBHOOKS_PER_GROUP:
        raise Conflict(
            f"A group has at most {WEBHOOKS_PER_GROUP} webhooks; delete one to add another"
        )
