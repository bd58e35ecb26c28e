"""The services' :class:`~server.services.notify.Notifier`, implemented on the bus.

Notifications are best effort: the change they announce is already committed, so a bus
failure is logged rather than turned into an error for the caller.
"""

from __future__ import annotations

import logging
import uuid

from protocol.frames import ServerFrame
from server.bus.base import Bus
from server.realtime.envelope import (
    CREDENTIALS_CHANNEL,
    ROSTERS_CHANNEL,
    Kind,
    group_channel,
    pack,
    user_channel,
)

log = logging.getLogger(__name__)


class BusNotifier:
    """Publishes events for every node's hub to deliver."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def to_user(self, user_id: uuid.UUID, frame: ServerFrame, exclude: str = "") -> None:
        """Deliver ``frame`` to all of the user's sockets but the ``exclude`` session."""
        await self._publish(user_channel(user_id), pack(Kind.EVENT, frame, exclude=exclude))

    async def to_users(self, user_ids: list[uuid.UUID], frame: ServerFrame) -> None:
        """Deliver ``frame`` to each user's sockets (one encode, one pipelined publish)."""
        payload = pack(Kind.EVENT, frame)
        try:
            await self._bus.publish_many([user_channel(user) for user in user_ids], payload)
        except Exception:
            log.exception("notification not published", extra={"users": len(user_ids)})

    async def to_group(self, group_id: uuid.UUID, frame: ServerFrame) -> None:
        """Deliver ``frame`` to the group's subscribers."""
        await self._publish(group_channel(group_id), pack(Kind.EVENT, frame))

    async def disconnect_user(self, user_id: uuid.UUID, reason: str) -> None:
        """Close every socket of the user, and make every node forget their credentials."""
        log.info("closing the user's sockets", extra={"reason": reason})
        await self._publish(user_channel(user_id), pack(Kind.DISCONNECT, subject=user_id))
        await self._publish(CREDENTIALS_CHANNEL, str(user_id).encode())

    async def membership_changed(self, group_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """Make every node re-check ``user_id``'s membership of ``group_id``.

        On the group's channel, in order with its messages, for the nodes delivering them;
        on the rosters channel for every node.
        """
        await self._publish(group_channel(group_id), pack(Kind.RECHECK, subject=user_id))
        await self.roster_changed(group_id)

    async def roster_changed(self, group_id: uuid.UUID) -> None:
        """Make every node drop what it cached of the group's members."""
        await self._publish(ROSTERS_CHANNEL, str(group_id).encode())

    async def _publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._bus.publish(channel, payload)
        except Exception:
            log.exception("notification not published", extra={"channel": channel})
