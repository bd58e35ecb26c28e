"""uvicorn's HTTP/1.1 protocol (h11) with deadlines for a request's head and for its reader.

uvicorn times out idle keep-alive connections, but not a request whose head arrives a byte
at a time: a client could hold a connection (and a file descriptor) for ever with a few
bytes a minute, and a few thousand such clients exhaust a node (slowloris). Here a request's
head (request line and headers; a WebSocket handshake is one too) must be complete within
``HTTP_HEAD_TIMEOUT_S`` of its first byte, or of the connection's start; otherwise the
connection is closed. Bodies are not concerned: they are bounded in size and read by the app.

Nor does uvicorn time out a client that stops reading its response (nginx's
``send_timeout``): a streamed response then waits for it for ever, holding what produces it
(the account export holds a database snapshot, so twenty unread exports held the whole pool).
Once the connection's buffer is full, the client must take more within
``HTTP_SEND_TIMEOUT_S``, or the connection is dropped; the app's further writes go nowhere.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class HeadDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` closing connections whose head is too slow, or whose reader is."""

    head_timeout_s = 10.0
    """Set by :func:`with_head_deadline`."""
    send_timeout_s = 30.0
    """Set by :func:`with_head_deadline`."""

    _head_timer: asyncio.TimerHandle | None = None
    _send_timer: asyncio.TimerHandle | None = None

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
            if self.transport.get_protocol() is not self:  # upgraded to a WebSocket
                self._reader_back()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline outlives its connection."""
        self._disarm()
        self._reader_back()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client stopped taking the response: it has ``send_timeout_s`` to take more."""
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_timeout_s, self._reader_gone)

    def resume_writing(self) -> None:
        """The client took some: no deadline until the buffer fills again."""
        super().resume_writing()
        self._reader_back()

    def _reader_back(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _reader_gone(self) -> None:
        """Drop the connection, unsent data and all.

        Also one uvicorn is closing gracefully: a close waits for the buffer to drain, which
        a client that never reads never lets happen.
        """
        self._send_timer = None
        if self.transport.get_protocol() is not self:
            return  # a WebSocket now: its own protocol deals with slow readers
        log.warning(
            "a client took none of its response for the send timeout; connection dropped",
            extra={"send_timeout_s": self.send_timeout_s},
        )
        self.transport.abort()

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


def with_head_deadline(
    timeout_s: float, send_timeout_s: float = HeadDeadlineProtocol.send_timeout_s
) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting.

    ``timeout_s`` per request head, ``send_timeout_s`` for a reader that stopped reading.
    """
    deadlines = {"head_timeout_s": timeout_s, "send_timeout_s": send_timeout_s}
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), deadlines)
