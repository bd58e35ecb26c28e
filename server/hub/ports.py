"""What the hub needs from the rest of the node, defined on the hub's side.

The hub knows nothing about services: the container hands it objects that fit these
interfaces (membership checks and recovery reads, implemented in ``server/services``).
"""

from __future__ import annotations

import uuid
from typing import Protocol

from server.realtime.log import Replay


class Access(Protocol):
    """Who may do what in a group, as far as sockets go."""

    async def may_read(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Return if the user may receive the group's messages.

        Raises:
            AppError: not allowed (``NotFound`` or ``Forbidden``).
        """
        ...

    async def may_post(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Return if the user may post (and so type) in the group.

        Raises:
            AppError: not allowed.
        """
        ...

    def forget(self, group_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """Drop what is cached about one user's (or everyone's) access to the group."""
        ...


class Recovery(Protocol):
    """Reads of a group's recent messages, for resubscribing clients and gap fills."""

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The highest seq assigned in the group."""
        ...

    async def replay(self, group_id: uuid.UUID, since_seq: int, upto: int) -> Replay:
        """The messages of ``(since_seq, upto]``, or not recovered when too many or too old."""
        ...
