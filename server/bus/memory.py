"""In-process bus for the embedded default (one node) and tests."""

from __future__ import annotations

from server.bus.base import Handler, Resync, dispatch


class MemoryBus:
    """Delivers synchronously, in publish order, to this process's handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Drop every subscription."""
        self._handlers.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        """Deliver to this process's handlers of ``channel``."""
        dispatch(self._handlers.get(channel, ()), channel, payload)

    async def publish_many(self, channels: list[str], payload: bytes) -> None:
        """Deliver to each channel in turn."""
        for channel in channels:
            await self.publish(channel, payload)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Add ``handler`` to ``channel``."""
        self._handlers.setdefault(channel, []).append(handler)

    async def listen(self, channel: str, handler: Handler) -> None:
        """Add ``handler`` to ``channel`` (in process, nothing can be down)."""
        await self.subscribe(channel, handler)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Remove ``handler`` from ``channel``."""
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers:
            self._handlers.pop(channel, None)

    def on_resync(self, callback: Resync) -> None:
        """An in-process bus never loses messages; nothing to register."""
