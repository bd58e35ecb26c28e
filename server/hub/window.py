"""A node's own copy of a group's latest messages, as they passed through its hub. No I/O.

When a node's sockets come back after a blip (a reconnect storm), each asks for what it missed.
The messages are in Redis's recovery window, but reading them there per socket costs a round
trip, a decode and a framing per socket. The hub has seen them go by (it fans them out), so it
keeps the latest ones per group, already framed, and replays from memory when they cover what
a socket missed; otherwise it reads the log as before.

A window only ever holds a gapless run of seqs: a gap (the bus missed something) restarts it.
It is bounded in bytes as well as in items: 1,000 messages of 4,000 four-byte characters
would otherwise keep 16 MB per group; what it drops, a replay reads from the log.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

from server.hub.cursor import Sequenced

MAX_WINDOW_BYTES = 1024 * 1024
"""Payload bytes one group's window keeps at most (about 5,000 typical chat messages)."""


class Weighed(Sequenced, Protocol):
    """A :class:`~server.hub.cursor.Sequenced` item with a payload ``size`` in bytes."""

    @property
    def size(self) -> int:
        """The payload's bytes."""
        ...


T = TypeVar("T", bound=Weighed)


class RecentWindow(Generic[T]):
    """The latest ``size`` items of one group (at most ``max_bytes``), consecutive by seq."""

    __slots__ = ("_bytes", "_items", "_max_bytes", "_size")

    def __init__(self, size: int, max_bytes: int = MAX_WINDOW_BYTES) -> None:
        self._items: deque[T] = deque()
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0

    def add(self, item: T) -> None:
        """Keep a live item; a duplicate is ignored, a gap starts the window again."""
        items = self._items
        if items:
            last = items[-1].seq
            if item.seq <= last:
                return
            if item.seq != last + 1:
                self.clear()
        items.append(item)
        self._bytes += item.size
        while len(items) > self._size or (self._bytes > self._max_bytes and len(items) > 1):
            self._bytes -= items.popleft().size

    def covering(self, after: int, upto: int) -> list[T] | None:
        """The items of ``(after, upto]`` if the window holds all of them, else None."""
        items = self._items
        if after >= upto:
            return []
        if not items or items[0].seq > after + 1 or items[-1].seq < upto:
            return None
        start = after + 1 - items[0].seq
        return [items[i] for i in range(start, start + upto - after)]

    def clear(self) -> None:
        """Forget everything (the bus reconnected: something may have been missed)."""
        self._items.clear()
        self._bytes = 0
