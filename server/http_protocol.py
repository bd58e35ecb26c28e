"""uvicorn's HTTP/1.1 protocol (h11) with a deadline for each request's head.

uvicorn times out idle keep-alive connections, but not a request whose head arrives a byte
at a time: a client could hold a connection (and a file descriptor) for ever with a few
bytes a minute, and a few thousand such clients exhaust a node (slowloris). Here a request's
head (request line and headers; a WebSocket handshake is one too) must be complete within
``HTTP_HEAD_TIMEOUT_S`` of its first byte, or of the connection's start; otherwise the
connection is closed. Bodies are not concerned: they are bounded in size and read by the app.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` closing connections whose request head is too slow."""

    head_timeout_s = 10.0
    """Set by :func:`with_head_deadline`."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's deadline with the connection."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed h11; a new request's first bytes start a deadline, a complete head ends it."""
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self._head_done():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline outlives its connection."""
        self._disarm()
        super().connection_lost(exc)

    def _head_done(self) -> bool:
        """The head is parsed (h11 left IDLE), or the connection became a WebSocket."""
        upgraded = self.transport.get_protocol() is not self
        return upgraded or self.conn.their_state is not h11.IDLE

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self._head_done() and not self.transport.is_closing():
            self.transport.close()


def with_head_deadline(timeout_s: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with ``timeout_s`` per head."""
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout_s": timeout_s})
