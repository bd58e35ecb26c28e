"""How services tell connected clients about changes, without knowing about sockets.

The hub implements :class:`Notifier` on top of the cross-node bus.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from protocol.frames import ServerFrame


class Notifier(Protocol):
    """Pushes events to sockets on every node."""

    async def to_user(self, user_id: uuid.UUID, frame: ServerFrame, exclude: str = "") -> None:
        """Deliver ``frame`` to every socket of ``user_id`` but the ``exclude`` session."""
        ...

    async def to_users(self, user_ids: list[uuid.UUID], frame: ServerFrame) -> None:
        """Deliver ``frame`` to every socket of each user."""
        ...

    async def to_group(self, group_id: uuid.UUID, frame: ServerFrame) -> None:
        """Deliver ``frame`` to every subscriber of ``group_id``."""
        ...

    async def disconnect_user(self, user_id: uuid.UUID, reason: str) -> None:
        """Close every socket of ``user_id`` (password changed, account deleted)."""
        ...

    async def membership_changed(self, group_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """A membership ended (one user's, or everyone's when None: the group went).

        Every node stops delivering to the affected sockets and drops the group's cached
        members.
        """
        ...

    async def roster_changed(self, group_id: uuid.UUID) -> None:
        """Make every node drop the group's cached members (a join, a role, its visibility)."""
        ...
