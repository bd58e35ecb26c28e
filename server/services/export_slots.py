"""How many account exports run at once: one per user, a few per node.

An export streams from one database snapshot, so it holds a pooled connection for as long as
its reader takes. Without a bound, one user opening twenty and reading none of them held the
whole pool, and every other request waited 5 s or failed with 503.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import RateLimited

RETRY_AFTER_S = 10
"""What a refused export is told to wait."""


class ExportSlots:
    """The exports running in this process, by user."""

    def __init__(self, per_node: int) -> None:
        self.per_node = max(1, per_node)
        self._running: set[uuid.UUID] = set()

    @contextmanager
    def hold(self, user_id: uuid.UUID) -> Iterator[None]:
        """Hold one of the slots for ``user_id``'s export while the block runs.

        Raises:
            RateLimited: the user's previous export is still running, or the node is full.
        """
        if user_id in self._running:
            raise RateLimited(RETRY_AFTER_S, "An export of yours is still running; finish it first")
        if len(self._running) >= self.per_node:
            raise RateLimited(RETRY_AFTER_S, "Too many exports are running; retry shortly")
        self._running.add(user_id)
        try:
            yield
        finally:
            self._running.discard(user_id)
