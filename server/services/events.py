"""How services record group events for webhooks, without knowing about webhooks.

Events are staged inside the transaction that makes the change (so a committed change always
has its deliveries, and a rolled-back one has none), then released to the job queue after the
commit. :class:`server.services.deliveries.WebhookDeliveries` implements this.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

VERIFY_EMAIL_JOB = "email.verification"
RESET_EMAIL_JOB = "email.password_reset"
NOTIFICATION_EMAIL_JOB = "email.notification"
FAN_OUT_JOB = "notifications.fan_out"

EventItem = tuple[uuid.UUID, str, msgspec.Struct]
"""``(group_id, key, data)``: ``key`` names the occurrence, so replaying it adds nothing."""


class Events(Protocol):
    """Stages and releases group events."""

    async def stage(
        self, session: AsyncSession, items: Sequence[EventItem], event: str
    ) -> list[uuid.UUID]:
        """Record ``event`` for each item in ``session``; return what to release."""
        ...

    async def release(self, ids: Sequence[uuid.UUID]) -> None:
        """Hand staged events to the job queue, after the commit; never raises."""
        ...


class Jobs(Protocol):
    """Queues background jobs by name (taskiq; in process in the embedded default)."""

    async def queue(self, name: str, *args: str) -> None:
        """Queue job ``name`` with ``args``.

        Raises:
            Exception: the queue is unreachable (the caller decides what that means).
        """
        ...
