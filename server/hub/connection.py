"""One socket's outbound side as the hub sees it, and its overflow policy.

Fan-out never waits for a client: frames are offered with :meth:`Connection.offer`, which
never blocks. When the socket's backlog is full (1,000 frames or 1 MiB), typing and presence
frames are dropped; anything else means the client cannot keep up, and the connection is
closed with 4010.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.codec import Codec
from protocol.errors import CloseCode
from protocol.frames import ServerFrame
from server.hub.cursor import Cursor
from server.hub.outlet import (
    Cork,
    DirectOutlet,
    FrameWriter,
    Outgoing,
    Outlet,
    QueuedOutlet,
    Send,
)
from server.observability.metrics import QUEUE_DROPS, SLOW_CONSUMER_CLOSES
from server.realtime.envelope import Kind

__all__ = ["CLOSE_TIMEOUT_S", "Connection", "Latch", "Outgoing"]

CLOSE_TIMEOUT_S = 10.0


class Latch:
    """A one-way flag that can be awaited; allocates a future only if someone waits."""

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._set = False
        self._future: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Raise the flag (once)."""
        self._set = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    def is_set(self) -> bool:
        """Whether the flag is raised."""
        return self._set

    async def wait(self) -> None:
        """Return once the flag is raised."""
        if self._set:
            return
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._future)


@dataclass(eq=False, slots=True)
class Connection:
    """A live, authenticated socket as the hub sees it.

    Frames go out through an outlet (:mod:`server.hub.outlet`): under our uvicorn protocol
    (``writer`` given) they are written to the transport at the end of the loop turn, through
    the node's ``cork``; else they are queued for ASGI ``send``. The close frame always goes
    through ``send``, after everything offered before it.
    """

    send: Send
    codec: Codec
    user_id: uuid.UUID
    session_id: str
    max_frames: int
    max_bytes: int
    on_closed: Callable[[], None] | None = None
    writer: FrameWriter | None = None
    cork: Cork | None = None
    groups: dict[uuid.UUID, Cursor[Outgoing]] = field(default_factory=dict)
    presence: dict[uuid.UUID, str] | None = None
    """Subscriptions that asked for ``diff`` or ``none`` presence (``each`` is the default)."""
    closed: Latch = field(default_factory=Latch)
    close_code: int | None = None
    outlet: Outlet = field(init=False)
    _closer: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        binary = self.codec.binary
        self.outlet = (
            DirectOutlet(self.writer, binary, self.cork or Cork())
            if self.writer is not None
            else QueuedOutlet(self.send, binary, self._gone)
        )

    def offer(self, item: Outgoing) -> None:
        """Hand ``item`` over without waiting; overflow drops ephemera or closes with 4010."""
        if self.close_code is not None:
            return
        frames, size = self.outlet.backlog()
        if frames >= self.max_frames or size + item.size > self.max_bytes:
            if item.kind is Kind.EPHEMERAL:
                QUEUE_DROPS.inc()
                return
            SLOW_CONSUMER_CLOSES.inc()
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer", flush=False)
            return
        self.outlet.put(item)

    async def drained(self, timeout_s: float) -> bool:
        """Wait until the client has taken most of what was offered; False if it stalls."""
        if self.close_code is not None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self.outlet.drained()
        except TimeoutError:
            return False
        return self.close_code is None

    def reply(self, frame: ServerFrame) -> None:
        """Send a frame to this connection only."""
        self.offer(Outgoing.direct(self.codec, frame))

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        """Close with ``code`` (once): after what was offered, or dropping what is queued."""
        if self.close_code is not None:
            return
        self.close_code = code
        if not flush:
            self.outlet.discard()
        self._closer = asyncio.get_running_loop().create_task(self._send_close(code, reason))

    async def stop(self) -> None:
        """Stop writing (the socket is gone); later offers are ignored."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        try:
            await self.outlet.stop()
        finally:
            self.closed.set()

    def _gone(self) -> None:
        """The peer went away while frames were being written."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        self.closed.set()

    async def _send_close(self, code: int, reason: str) -> None:
        """Flush, then send the close frame; give up on a peer stuck for CLOSE_TIMEOUT_S."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.outlet.flush()
                with contextlib.suppress(Exception):  # the peer is already gone
                    await self.send({"type": "websocket.close", "code": code, "reason": reason})
        except TimeoutError:
            self.outlet.abort()
        finally:
            self.closed.set()
            if self.on_closed is not None:
                self.on_closed()
