"""The bus interface shared by the Redis and in-process implementations."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
"""Called with ``(channel, payload)`` on the event loop; must not block or raise."""
Resync = Callable[[frozenset[str]], None]
"""Told, after a reconnect, the channels whose messages may have been missed meanwhile."""


class BusUnavailable(ConnectionError):
    """The bus cannot subscribe or publish right now."""


class Bus(Protocol):
    """Ordered pub/sub between nodes. Channels are plain names; payloads are bytes."""

    async def start(self) -> None:
        """Connect and begin delivering."""
        ...

    async def stop(self) -> None:
        """Stop delivering and release connections."""
        ...

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to every node subscribed to ``channel``.

        Raises:
            BusUnavailable: or the backend's connection error.
        """
        ...

    async def publish_many(self, channels: list[str], payload: bytes) -> None:
        """Send the same ``payload`` to several channels in one round trip."""
        ...

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Deliver ``channel`` to ``handler``; returns once delivery is guaranteed.

        Raises:
            BusUnavailable: the backend cannot confirm the subscription.
        """
        ...

    async def listen(self, channel: str, handler: Handler) -> None:
        """Deliver ``channel`` to ``handler`` from now on or, if the bus is down, once it is up.

        For a node's own channels, which must not stop it from starting. Never raises.
        """
        ...

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Stop delivering ``channel`` to ``handler``."""
        ...

    def on_resync(self, callback: Resync) -> None:
        """Call ``callback`` after a reconnect with the channels that may have missed messages."""
        ...


def dispatch(handlers: list[Handler] | tuple[Handler, ...], channel: str, payload: bytes) -> None:
    """Call every handler; one failing handler never stops the others."""
    for handler in tuple(handlers):
        try:
            handler(channel, payload)
        except Exception:
            log.exception("bus handler failed", extra={"channel": channel})
