"""A connection's frames: encoded once per node, and where they go.

:class:`Outgoing` is one server frame in the forms sockets need (JSON, MessagePack, and the
complete WebSocket frame of either), each made on first need and shared by every recipient.
A server never masks, and StudyBuddy never compresses or fragments, so a WebSocket data frame
(RFC 6455 section 5.2) is a fixed header plus the payload: the same bytes for everyone.

:class:`DirectOutlet` is the fast path: our uvicorn protocol
(:mod:`server.ws.uvicorn_protocol`) accepts frames framed once per node and writes them to the
transport at once, so fan-out costs one ``write`` per socket and no task. The transport's
buffer is then the socket's queue, and its size is what the overflow policy reads.
:class:`QueuedOutlet` serves any other ASGI server: a bounded queue drained by a writer task
that exists only while there is something to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from websockets.frames import Frame, Opcode

from protocol.codec import Codec
from protocol.frames import ServerFrame
from server.observability.metrics import FANOUT_LATENCY, FRAMES
from server.realtime.envelope import Kind

Send = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger(__name__)
LATENCY_SAMPLE = 16
"""One written frame in this many feeds the fan-out latency histogram."""


def ws_frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unmasked, final data frame carrying ``payload`` (websockets serialises it)."""
    return Frame(Opcode.BINARY if binary else Opcode.TEXT, payload).serialize(mask=False)


class Outgoing:
    """One server frame in the forms sockets need, each made on first need and then shared.

    ``data`` is the JSON encoding (as it arrives from the bus); the MessagePack encoding and
    the complete WebSocket frames (header + payload) of either are derived from it once.
    """

    __slots__ = ("_binary", "_wire", "created", "data", "kind", "seq", "size", "type")

    def __init__(
        self,
        kind: Kind,
        seq: int,
        frame_type: str,
        data: bytes | None,
        binary: bytes | None = None,
        created: float = 0.0,
    ) -> None:
        self.kind = kind
        self.seq = seq
        self.type = frame_type
        self.data = data
        self._binary = binary
        self._wire: list[bytes | None] = [None, None]
        self.created = created
        self.size = len(data) if data is not None else len(binary or b"")

    @classmethod
    def from_json(
        cls, kind: Kind, seq: int, frame: bytes, frame_type: str, created: float = 0.0
    ) -> Outgoing:
        """Wrap a JSON frame received from the bus."""
        return cls(kind, seq, frame_type, frame, created=created)

    @classmethod
    def shared(cls, frame: ServerFrame, kind: Kind = Kind.EPHEMERAL) -> Outgoing:
        """A frame made on this node for many sockets (JSON once, MessagePack on first need)."""
        tag = str(type(frame).__struct_config__.tag)
        return cls(kind, 0, tag, msgspec.json.encode(frame))

    @classmethod
    def direct(cls, codec: Codec, frame: ServerFrame, kind: Kind = Kind.EVENT) -> Outgoing:
        """Encode a reply for one connection."""
        data = codec.encode(frame)
        frame_type = str(type(frame).__struct_config__.tag)
        if codec.binary:
            return cls(kind, 0, frame_type, None, data)
        return cls(kind, 0, frame_type, data)

    def text(self) -> str:
        """The JSON form as text (for a plain ASGI ``websocket.send``)."""
        return (self.data or b"null").decode()

    def binary(self) -> bytes:
        """The MessagePack form (made on first need, from the JSON form)."""
        if self._binary is None:
            self._binary = msgspec.msgpack.encode(msgspec.json.decode(self.data or b"null"))
        return self._binary

    def wire(self, binary: bool) -> bytes:
        """The complete WebSocket frame: binary (MessagePack) or text (JSON)."""
        framed = self._wire[binary]
        if framed is None:
            payload = self.binary() if binary else (self.data or b"null")
            framed = self._wire[binary] = ws_frame(payload, binary=binary)
        return framed


class FrameWriter(Protocol):
    """The ``studybuddy.frames`` ASGI extension: pre-framed writes to the socket."""

    def write_frame(self, data: bytes) -> bool:
        """Write a complete frame; False once the socket is closing."""

    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""

    def abort_transport(self) -> None:
        """Drop the connection now."""

    async def wait_writable(self) -> None:
        """Return once the transport's buffer is below its low-water mark (or closed)."""


class Outlet(Protocol):
    """A connection's way out."""

    def backlog(self) -> tuple[int, int]:
        """Frames and bytes handed over but not yet on their way to the client."""

    def put(self, item: Outgoing) -> None:
        """Hand a frame over (never waits)."""

    async def flush(self) -> None:
        """Return once everything put so far is handed to the server."""

    async def drained(self) -> None:
        """Return once the client has taken most of what was put (flow control)."""

    def discard(self) -> None:
        """Forget what is not yet handed to the server."""

    def abort(self) -> None:
        """Give up on a peer that stopped reading."""

    async def stop(self) -> None:
        """Stop writing for good."""


class _Tally:
    """Counts written frames by type and samples their fan-out latency."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = 0

    def record(self, item: Outgoing) -> None:
        FRAMES.add("out", item.type)
        self.written += 1
        if item.created and self.written % LATENCY_SAMPLE == 0:
            FANOUT_LATENCY.observe(max(0.0, time.time() - item.created))


class Cork:
    """Holds back writes made in one turn of the event loop and writes them at its end.

    A socket that gets several frames in one turn (a burst read from the bus) gets them in
    one ``write``: one system call instead of several. A lone frame waits for nothing but
    the end of the current turn.
    """

    __slots__ = ("_loop", "_waiting")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[DirectOutlet] = []

    def hold(self, outlet: DirectOutlet) -> None:
        """Write ``outlet``'s held frames at the end of this turn."""
        waiting = self._waiting
        if not waiting:
            loop = self._loop or asyncio.get_running_loop()
            self._loop = loop
            loop.call_soon(self._release)
        waiting.append(outlet)

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for outlet in waiting:
            try:
                outlet.write_held()
            except Exception:  # one broken transport must not hold up the other sockets
                log.exception("socket write failed")


class DirectOutlet(_Tally):
    """Frames written to the transport at the end of the loop turn they were offered in.

    ``_ends`` holds the stream offset at which each frame still in the transport's buffer
    ends, so the backlog can be counted in frames as well as bytes; it is None while that
    buffer holds none of our frames.
    """

    __slots__ = ("_binary", "_cork", "_ends", "_held", "_held_bytes", "_total", "_writer")

    def __init__(self, writer: FrameWriter, binary: bool, cork: Cork) -> None:
        super().__init__()
        self._writer = writer
        self._binary = binary
        self._cork = cork
        self._total = 0
        self._ends: deque[int] | None = None
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    def backlog(self) -> tuple[int, int]:
        """Frames and bytes held or in the transport's buffer.

        When the last write left the transport's buffer empty (``_ends`` is None), it still
        is as far as our frames go: the buffer only shrinks until we write again.
        """
        held = self._held
        frames, size = (len(held), self._held_bytes) if held else (0, 0)
        ends = self._ends
        if ends is None:
            return frames, size
        buffered = self._writer.write_buffer_size()
        if not buffered:
            self._ends = None
            return frames, size
        sent = self._total - buffered
        while ends and ends[0] <= sent:
            ends.popleft()
        return len(ends) + frames, buffered + size

    def put(self, item: Outgoing) -> None:
        """Hold the frame for the end of this loop turn."""
        data = item.wire(self._binary)
        self.record(item)
        held = self._held
        if held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._cork.hold(self)
        else:
            held.append(data)
            self._held_bytes += len(data)

    def write_held(self) -> None:
        """Write what is held, in one go."""
        held, self._held = self._held, None
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        self._held_bytes = 0
        if not self._writer.write_frame(data):
            return
        start, self._total = self._total, self._total + len(data)
        if not self._writer.write_buffer_size():
            self._ends = None
            return
        if self._ends is None:
            self._ends = deque()
        for frame in held:  # the kernel did not take it all: remember where each frame ends
            start += len(frame)
            self._ends.append(start)

    async def flush(self) -> None:
        """Write what is held now."""
        self.write_held()

    async def drained(self) -> None:
        """Write what is held, then wait until the transport's buffer runs low."""
        self.write_held()
        await self._writer.wait_writable()

    def discard(self) -> None:
        """Forget what is held; the transport keeps what it has."""
        self._held = None
        self._held_bytes = 0

    def abort(self) -> None:
        """Drop the connection, buffer and all."""
        self._writer.abort_transport()

    async def stop(self) -> None:
        """Nothing runs in the background."""
        self.discard()


class QueuedOutlet(_Tally):
    """Frames queued and written by a writer task through ASGI ``send``."""

    __slots__ = ("_binary", "_bytes", "_on_gone", "_queue", "_send", "_writer")

    def __init__(self, send: Send, binary: bool, on_gone: Callable[[], None]) -> None:
        super().__init__()
        self._send = send
        self._binary = binary
        self._on_gone = on_gone
        self._queue: deque[Outgoing] = deque()
        self._bytes = 0
        self._writer: asyncio.Task[None] | None = None

    def backlog(self) -> tuple[int, int]:
        """Frames and bytes queued."""
        return len(self._queue), self._bytes

    def put(self, item: Outgoing) -> None:
        """Queue the frame; start the writer if it is not running."""
        self._queue.append(item)
        self._bytes += item.size
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def flush(self) -> None:
        """Wait for the writer to empty the queue."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait({writer})

    async def drained(self) -> None:
        """Wait for the writer to empty the queue (ASGI ``send`` applies the flow control)."""
        await self.flush()

    def discard(self) -> None:
        """Drop the queue and stop the writer."""
        self._queue.clear()
        self._bytes = 0
        if self._writer is not None:
            self._writer.cancel()

    def abort(self) -> None:
        """ASGI cannot drop a connection; stop writing to it."""
        self.discard()

    async def stop(self) -> None:
        """Cancel the writer and wait for it."""
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _write_loop(self) -> None:
        try:
            await self._drain()
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer is gone; nothing more can be written
            self._queue.clear()
            self._bytes = 0
            self._on_gone()
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            item = queue.popleft()
            self._bytes -= item.size
            if self._binary:
                await self._send({"type": "websocket.send", "bytes": item.binary()})
            else:
                await self._send({"type": "websocket.send", "text": item.text()})
            self.record(item)
