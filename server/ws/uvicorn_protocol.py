"""uvicorn's sans-I/O WebSocket protocol with one addition: pre-framed writes.

ASGI makes every ``websocket.send`` frame its payload again, per socket, and await. The hub
sends the same frame to many sockets, so this protocol offers the ASGI extension
``studybuddy.frames`` (see :class:`server.hub.outlet.FrameWriter`): the app hands over bytes
already framed once per node, and they go straight to the transport. Everything else
(handshake, pings, closes, reads) is uvicorn's. Without the extension, as under any other
ASGI server, the app falls back to plain ``websocket.send``.

One fix besides: an upgrade request that ``websockets`` refuses before parsing it whole (a
header line over 8 KiB, too many headers, a request line too long, no HTTP at all) was never
answered: ``websockets`` queued its 4xx, uvicorn waited for a request that never came, and
the connection stayed open for as long as the client liked. It is answered in the
contract's envelope and closed.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import HeaderLineTooLong, RequestLineTooLong, TooManyHeaders
from websockets.http11 import Request

from protocol.errors import ErrorCode
from server.api.responses import error_body

EXTENSION = "studybuddy.frames"


class FrameWriterProtocol(WebSocketsSansIOProtocol):
    """A WebSocket connection that also accepts pre-framed data frames."""

    def data_received(self, data: bytes) -> None:
        """uvicorn's, then answer a request ``websockets`` refused before it was whole."""
        super().data_received(data)
        refused = self.conn.handshake_exc
        if refused is not None and not self.handshake_initiated:
            if not self.transport.is_closing():
                self.conn.data_to_send()  # websockets' own plain-text answer: ours instead
                self.transport.write(unparsed_answer(refused))
                self.transport.close()

    def handle_connect(self, event: Request) -> None:
        """Build the scope as uvicorn does, and offer the extension in it."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None when the handshake was refused
            scope["extensions"][EXTENSION] = self

    async def send(self, message: Any) -> None:
        """Run uvicorn's ``send``; once the handshake is answered, drop what only it needed.

        The parsed request and the prepared response (headers and all) would otherwise stay
        with every idle socket for its whole life.
        """
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self.request = self.response = None  # type: ignore[assignment]

    def write_frame(self, data: bytes) -> bool:
        """Write a complete data frame; False (nothing written) once closing or closed."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self.transport.get_write_buffer_size()

    async def wait_writable(self) -> None:
        """Return once the transport's buffer is below its low-water mark, or it is lost.

        uvicorn keeps ``writable`` set and cleared from the transport's flow-control callbacks.
        """
        await self.writable.wait()

    def abort_transport(self) -> None:
        """Drop the connection now, unsent data included (a peer that stopped reading)."""
        self.transport.abort()


def unparsed_answer(refused: Exception) -> bytes:
    """The HTTP answer to an upgrade request refused before it was parsed whole."""
    status = HTTPStatus.BAD_REQUEST  # VALIDATION_ERROR is 400 in the contract, whatever the fault
    what = "too long"
    if isinstance(refused, RequestLineTooLong):
        what = "a request line too long"
    elif isinstance(refused, HeaderLineTooLong | TooManyHeaders):
        what = "headers too large (8 KiB a line, 128 lines)"
    else:
        what = "not an HTTP request"
    message = f"The WebSocket upgrade request was refused: {what} ({refused})"
    body = error_body(ErrorCode.VALIDATION_ERROR, message)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {uuid.uuid4().hex}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
