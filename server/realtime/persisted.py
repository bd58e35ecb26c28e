"""Who waits for which message to reach history, told by every node's persister over the bus.

A REST post answers once its message is in history (so an immediate ``GET`` or ``PATCH``
finds it), yet only the persisters write message rows. Each persister announces the message
ids of every batch it commits on one bus channel; a node resolves the waits of its own
requests. A lost announcement (a bus reconnect) only makes a wait time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

from server.bus.base import Bus

CHANNEL = "persisted"
ID_BYTES = 16


class PersistWatch:
    """Waits, by message id, for the announcement that a message is stored."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._waiting: dict[uuid.UUID, asyncio.Future[None]] = {}
        self._wake: Callable[[], None] | None = None

    def wake_with(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (this node's persister) whenever someone starts waiting."""
        self._wake = wake

    async def start(self) -> None:
        """Listen for announcements."""
        await self._bus.listen(CHANNEL, self._on_announcement)

    async def stop(self) -> None:
        """Stop listening; pending waits end unresolved."""
        with contextlib.suppress(Exception):
            await self._bus.unsubscribe(CHANNEL, self._on_announcement)
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    async def announce(self, ids: list[uuid.UUID]) -> None:
        """Tell every node that these messages are stored (the persister calls this)."""
        await self._bus.publish(CHANNEL, b"".join(message_id.bytes for message_id in ids))

    def expect(self, message_id: uuid.UUID) -> None:
        """Start waiting for ``message_id``: call before the message can be appended."""
        self._waiting.setdefault(message_id, asyncio.get_running_loop().create_future())

    async def wait(self, message_id: uuid.UUID, timeout_s: float) -> bool:
        """Wait (bounded) for an expected message's announcement; False on timeout."""
        future = self._waiting.get(message_id)
        if future is None:
            return False
        if self._wake is not None:
            self._wake()
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(message_id, None)
        return True

    def discard(self, message_id: uuid.UUID) -> None:
        """Stop waiting for ``message_id`` (it turned out to be a repeat)."""
        future = self._waiting.pop(message_id, None)
        if future is not None:
            future.cancel()

    def _on_announcement(self, _channel: str, payload: bytes) -> None:
        if not self._waiting:
            return
        for start in range(0, len(payload) - ID_BYTES + 1, ID_BYTES):
            future = self._waiting.get(uuid.UUID(bytes=payload[start : start + ID_BYTES]))
            if future is not None and not future.done():
                future.set_result(None)
