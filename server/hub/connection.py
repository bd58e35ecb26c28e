"""One socket's outbound side: a bounded queue drained by one writer task.

Fan-out never waits for a client: frames are offered with :meth:`Connection.offer`, which
never blocks. When the queue is full, typing and presence frames are dropped; anything else
means the client cannot keep up, and the connection is closed with 4010.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from protocol.codec import Codec
from protocol.errors import CloseCode
from protocol.frames import ServerFrame
from server.hub.envelope import Kind
from server.observability.metrics import FANOUT_LATENCY, FRAMES, QUEUE_DROPS, SLOW_CONSUMER_CLOSES

Send = Callable[[dict[str, Any]], Awaitable[None]]
CLOSE_TIMEOUT_S = 10.0
LATENCY_SAMPLE = 16


class Outgoing:
    """A frame ready to write: encoded once per node, shared by every recipient."""

    __slots__ = ("_binary", "created", "kind", "seq", "size", "text", "type")

    def __init__(
        self,
        kind: Kind,
        seq: int,
        frame_type: str,
        text: str | None,
        binary: bytes | None = None,
        created: float = 0.0,
        size: int = 0,
    ) -> None:
        self.kind = kind
        self.seq = seq
        self.type = frame_type
        self.text = text
        self._binary = binary
        self.created = created
        self.size = size or len(binary or b"") or len(text or "")

    @classmethod
    def from_json(
        cls, kind: Kind, seq: int, frame: bytes, frame_type: str, created: float = 0.0
    ) -> Outgoing:
        """Wrap a JSON frame received from the bus (decoded to text once)."""
        return cls(kind, seq, frame_type, frame.decode(), created=created, size=len(frame))

    @classmethod
    def direct(cls, codec: Codec, frame: ServerFrame, kind: Kind = Kind.EVENT) -> Outgoing:
        """Encode a reply for one connection."""
        data = codec.encode(frame)
        frame_type = type(frame).__struct_config__.tag
        if codec.binary:
            return cls(kind, 0, str(frame_type), None, data)
        return cls(kind, 0, str(frame_type), data.decode(), size=len(data))

    def binary(self) -> bytes:
        """The MessagePack form (made on first need, from the JSON form)."""
        if self._binary is None:
            self._binary = msgspec.msgpack.encode(msgspec.json.decode(self.text or "null"))
        return self._binary


@dataclass(slots=True)
class GroupState:
    """Delivery state of one subscription: the last seq written, and a buffer while replaying."""

    delivered: int = 0
    buffer: list[Outgoing] | None = None


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

    Memory matters per idle socket: the queue and the writer task exist only while there is
    something to write, and ``closed`` allocates nothing unless awaited.
    """

    send: Send
    codec: Codec
    user_id: uuid.UUID
    session_id: str
    max_frames: int
    max_bytes: int
    on_closed: Callable[[], None] | None = None
    groups: dict[uuid.UUID, GroupState] = field(default_factory=dict)
    closed: Latch = field(default_factory=Latch)
    close_code: int | None = None
    _queue: deque[Outgoing] | None = None
    _bytes: int = 0
    _writer: asyncio.Task[None] | None = None
    _closer: asyncio.Task[None] | None = None
    _close_reason: str = ""
    _written: int = 0

    def offer(self, item: Outgoing) -> None:
        """Queue ``item`` without waiting; overflow drops ephemera or closes with 4010."""
        if self.close_code is not None:
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.max_frames or self._bytes + item.size > self.max_bytes:
            if item.kind is Kind.EPHEMERAL:
                QUEUE_DROPS.inc()
                return
            SLOW_CONSUMER_CLOSES.inc()
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer", flush=False)
            return
        queue.append(item)
        self._bytes += item.size
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def reply(self, frame: ServerFrame) -> None:
        """Queue a frame for this connection only."""
        self.offer(Outgoing.direct(self.codec, frame))

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        """Close with ``code`` (once): after what is queued, or at once dropping it."""
        if self.close_code is not None:
            return
        self.close_code = code
        self._close_reason = reason
        if not flush:
            self._abort(code, reason)
            return
        loop = asyncio.get_running_loop()
        if self._writer is None:  # nothing queued: the writer only sends the close
            self._writer = loop.create_task(self._write_loop())
        loop.call_later(CLOSE_TIMEOUT_S, self._give_up_flushing)  # unless the peer is stuck

    def _give_up_flushing(self) -> None:
        if not self.closed.is_set() and self._closer is None and self.close_code is not None:
            self._abort(self.close_code, self._close_reason)

    def _abort(self, code: int, reason: str) -> None:
        self._queue = None
        self._bytes = 0
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.get_running_loop().create_task(self._send_close(code, reason))

    async def stop(self) -> None:
        """Stop the writer (the socket is gone); later offers are ignored."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        try:
            writer = self._writer
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
        finally:
            self.closed.set()

    async def _write_loop(self) -> None:
        """Write what is queued, then the close if one is due; end when there is nothing left."""
        try:
            await self._drain()
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer is gone; nothing more can be written
            if self.close_code is None:
                self.close_code = CloseCode.GOING_AWAY
            self._queue = None
            self.closed.set()
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _drain(self) -> None:
        queue = self._queue
        binary = self.codec.binary
        while queue:
            item = queue.popleft()
            self._bytes -= item.size
            if binary:
                await self.send({"type": "websocket.send", "bytes": item.binary()})
            else:
                await self.send({"type": "websocket.send", "text": item.text})
            self._record(item)
        if queue is self._queue:
            self._queue = None
        if self.close_code is not None and self._closer is None:
            await self._send_close(self.close_code, self._close_reason)

    def _record(self, item: Outgoing) -> None:
        FRAMES.add("out", item.type)
        self._written += 1
        if item.created and self._written % LATENCY_SAMPLE == 0:
            FANOUT_LATENCY.observe(max(0.0, time.time() - item.created))

    async def _send_close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.send({"type": "websocket.close", "code": code, "reason": reason}),
                CLOSE_TIMEOUT_S,
            )
        self.closed.set()
        if self.on_closed is not None:
            self.on_closed()
