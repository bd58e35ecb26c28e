"""Webhook deliveries: staged with the change that caused them, then attempted by a job.

Each event becomes one delivery row per subscribed webhook, staged in the transaction of the
change (so a committed change always has its deliveries and a rolled-back one none), then a
queued job. The job signs the body, posts it to an address checked to be public (or
allowed), and retries a failure after 1 s and then 4 s (times the configured base): 3
attempts, then ``dead``. Deliveries are at least once: a receiver deduplicates by
``X-StudyBuddy-Delivery``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol import objects
from server.errors import ValidationFailed
from server.outbound.webhook_client import PostResult
from server.security import signing
from server.security.crypto import SecretBox
from server.security.webhook_urls import (
    AllowList,
    IPAddress,
    UnsafeUrl,
    WebhookTarget,
    check_addresses,
    parse_webhook_url,
)
from server.services.clock import Clock
from server.services.events import EventItem
from server.services.policy import ALLOWED, Action
from server.store import webhooks as repo
from server.store.db import Database
from server.store.models import DeliveryStatus, Webhook, WebhookDelivery

log = logging.getLogger(__name__)
WEBHOOK_MANAGERS = tuple(role.value for role in ALLOWED[Action.MANAGE_WEBHOOKS])
"""Roles that may manage a group's webhooks, and whose webhooks receive its events."""
MAX_ATTEMPTS = 3
FINAL = frozenset({DeliveryStatus.SUCCEEDED.value, DeliveryStatus.DEAD.value})
USER_AGENT = "StudyBuddy-Webhooks/1"


class Receivers(Protocol):
    """Resolves and posts to webhook receivers (``server.outbound.webhook_client``)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host``."""
        ...

    async def post(
        self, target: WebhookTarget, address: IPAddress, body: bytes, headers: dict[str, str]
    ) -> PostResult:
        """POST ``body``; never raises for network trouble."""
        ...


DeliveryQueue = Callable[[Sequence[uuid.UUID]], Awaitable[None]]
"""Queues a delivery job per id (taskiq in a node, or in-process in the embedded default)."""


def retry_delay(attempts_made: int, base_s: float) -> float:
    """Wait before the next attempt: ``base`` after the first, ``4 * base`` after the second."""
    return float(base_s * 4 ** (attempts_made - 1))


def delivery_id(webhook_id: uuid.UUID, event: str, key: str) -> uuid.UUID:
    """A delivery's id, derived from what it delivers, so that a replayed event adds nothing."""
    return uuid.uuid5(webhook_id, f"{event}/{key}")


class WebhookDeliveries:
    """Stages events as deliveries, queues them, and runs their attempts."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        clock: Clock,
        receivers: Receivers,
        queue: DeliveryQueue,
        *,
        allow: AllowList,
        retry_base_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._receivers = receivers
        self._queue = queue
        self._allow = allow
        self._retry_base_s = retry_base_s
        self._sleep = sleep

    async def stage(
        self, session: AsyncSession, items: Sequence[EventItem], event: str
    ) -> list[uuid.UUID]:
        """Add deliveries of ``event`` for ``(group_id, key, data)`` items in ``session``."""
        groups = {group for group, _, _ in items}
        hooks = await repo.subscribers(session, groups, event, WEBHOOK_MANAGERS)
        if not hooks:
            return []
        now = self._clock.now()
        rows: list[dict[str, Any]] = [
            {
                "id": delivery_id(hook.id, event, key),
                "webhook_id": hook.id,
                "event": event,
                "payload": msgspec.to_builtins(data),
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for group, key, data in items
            for hook in hooks
            if hook.group_id == group
        ]
        await repo.add_deliveries(session, rows)
        return [row["id"] for row in rows]

    async def release(self, ids: Sequence[uuid.UUID]) -> None:
        """Queue the delivery jobs of ``ids`` (after their rows are committed).

        A failure is logged, not raised: the change that caused the event is committed, and
        the deliveries stay pending until a node's start-up re-queues them.
        """
        if not ids:
            return
        try:
            await self._queue(ids)
        except Exception:
            log.exception("could not queue webhook deliveries", extra={"count": len(ids)})

    async def requeue_stalled(self, older_than_s: float = 60.0) -> int:
        """Queue again deliveries left pending or failed (a crash, a queue outage)."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_s)
        async with self._db.session() as session:
            ids = await repo.stalled_deliveries(session, cutoff)
        await self.release(ids)
        return len(ids)

    async def deliver(self, delivery_id_: uuid.UUID) -> str | None:
        """Run a delivery's remaining attempts; return its final status (None if unknown).

        Each attempt reads the delivery and its webhook again: a webhook deleted, a creator
        demoted or erased, a group deleted since the last one ends it, and a payload blanked
        by an erasure is sent blank.
        """
        loaded = await self._current(delivery_id_)
        if loaded is None:
            return None
        attempts, status = loaded[0].attempts, loaded[0].status
        while status not in FINAL:
            if attempts:
                await self._sleep(retry_delay(attempts, self._retry_base_s))
                loaded = await self._current(delivery_id_)
                if loaded is None:
                    return None
            outcome = await self._attempt(*loaded)
            recorded = await self._record(delivery_id_, attempts, outcome)
            if recorded is None:
                return None  # another worker moved it on meanwhile
            attempts, status = attempts + 1, recorded
        return status

    async def _current(
        self, delivery_id_: uuid.UUID
    ) -> tuple[WebhookDelivery, Webhook | None] | None:
        """The delivery, and its webhook if that still receives the group's events."""
        async with self._db.session() as session:
            loaded = await repo.get_delivery(session, delivery_id_)
            if loaded is None:
                return None
            delivery, hook = loaded
            feeding = await repo.still_feeding(session, hook.id, WEBHOOK_MANAGERS)
        return delivery, hook if feeding else None

    async def last_error(self, delivery_id_: uuid.UUID) -> str:
        """Why a delivery's last attempt failed (empty if it did not)."""
        async with self._db.session() as session:
            loaded = await repo.get_delivery(session, delivery_id_)
        return (loaded[0].last_error or "") if loaded else ""

    async def revive(self, delivery_id_: uuid.UUID) -> None:
        """Make a dead delivery pending with no attempts (an operator's dead-letter replay)."""
        async with self._db.session() as session, session.begin():
            await repo.revive_delivery(session, delivery_id_, self._clock.now())

    async def _attempt(
        self, delivery: WebhookDelivery, hook: Webhook | None
    ) -> PostResult | UnsafeUrl:
        if hook is None:
            return UnsafeUrl("the webhook no longer receives the group's events")
        target = parse_webhook_url(hook.url)
        try:
            found = await self._receivers.resolve(target.host, target.port)
            addresses = check_addresses(target, found, self._allow)
        except UnsafeUrl as exc:
            if found:
                return exc  # resolves somewhere it must not go: skipped for good
            return PostResult(None, str(exc))
        body = msgspec.json.encode(
            objects.WebhookEventBody(
                id=delivery.id,
                type=delivery.event,  # type: ignore[arg-type]
                created_at=delivery.created_at,
                data=delivery.payload,
            )
        )
        headers = {
            "User-Agent": USER_AGENT,
            "X-StudyBuddy-Event": delivery.event,
            "X-StudyBuddy-Delivery": str(delivery.id),
            signing.SIGNATURE_HEADER: signing.sign(
                self._box.open(hook.secret), body, int(self._clock.time())
            ),
        }
        return await self._receivers.post(target, addresses[0], body, headers)

    async def _record(
        self, delivery_id_: uuid.UUID, attempts: int, outcome: PostResult | UnsafeUrl
    ) -> str | None:
        """Store an attempt's outcome unless another worker recorded one first."""
        if isinstance(outcome, UnsafeUrl):
            values: dict[str, Any] = {
                "status": DeliveryStatus.DEAD.value,
                "last_error": f"skipped: {outcome}",
            }
        else:
            values = {
                "status": _status_after(attempts + 1, outcome),
                "attempts": attempts + 1,
                "response_status": outcome.status,
                "last_error": outcome.error,
            }
        async with self._db.session() as session, session.begin():
            recorded = await repo.record_attempt(
                session, delivery_id_, attempts, {**values, "updated_at": self._clock.now()}
            )
        return str(values["status"]) if recorded else None

    async def check_url(self, url: str) -> None:
        """Accept only http(s) URLs that resolve to public (or allowed) addresses.

        Raises:
            ValidationFailed: the URL is refused.
        """
        try:
            target = parse_webhook_url(url)
            found = await self._receivers.resolve(target.host, target.port)
            check_addresses(target, found, self._allow)
        except UnsafeUrl as exc:
            raise ValidationFailed.field(
                "url", str(exc), "Use a public http(s) URL, e.g. https://example.com/hooks"
            ) from exc


def _status_after(attempts: int, outcome: PostResult) -> str:
    if outcome.ok:
        return DeliveryStatus.SUCCEEDED.value
    if attempts >= MAX_ATTEMPTS:
        return DeliveryStatus.DEAD.value
    return DeliveryStatus.FAILED.value


def _message(row: dict[str, Any]) -> objects.Message:
    return msgspec.convert({**row, "edited_at": None}, objects.Message, strict=False)


class MessageEvents:
    """``message.created`` deliveries of the persister's batches (its batch hook)."""

    def __init__(self, deliveries: WebhookDeliveries) -> None:
        self._deliveries = deliveries

    async def stage(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
        """Stage ``message.created`` for the batch's message rows."""
        items = [(row["group_id"], str(row["id"]), _message(row)) for row in rows]
        return await self._deliveries.stage(session, items, "message.created")

    async def release(self, staged: Sequence[uuid.UUID]) -> None:
        """Queue the staged deliveries."""
        await self._deliveries.release(staged)
