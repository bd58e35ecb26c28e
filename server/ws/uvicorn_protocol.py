"""uvicorn's sans-I/O WebSocket protocol with one addition: pre-framed writes.

ASGI makes every ``websocket.send`` frame its payload again, per socket, and await. The hub
sends the same frame to many sockets, so this protocol offers the ASGI extension
``studybuddy.frames`` (see :class:`server.hub.outlet.FrameWriter`): the app hands over bytes
already framed once per node, and they go straight to the transport. Everything else
(handshake, pings, closes, reads) is uvicorn's. Without the extension, as under any other
ASGI server, the app falls back to plain ``websocket.send``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION = "studybuddy.frames"


class FrameWriterProtocol(WebSocketsSansIOProtocol):
    """A WebSocket connection that also accepts pre-framed data frames."""

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
