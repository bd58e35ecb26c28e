"""A lean socket client for benchmarks: asyncio protocol + websockets' sans-I/O protocol.

The benchmark client shares two cores with the nodes, Redis and PostgreSQL, so it must cost
as little as possible per frame: no per-frame task, one msgspec decode into a small Struct.

It speaks two dialects with the same socket code: StudyBuddy's (contract section 4) and
the JSON protocol of Go's centrifuge library (the yardstick of issue 11,
``loadtests/yardstick``), so both servers are measured by the same instrument.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri


class Incoming(msgspec.Struct):
    """The fields a benchmark looks at, whichever server sent the frame."""

    type: str
    seq: int = 0
    created_at: str = ""
    client_msg_id: str = ""
    sender: int = -1
    """Centrifuge only: which benchmark sender published it (StudyBuddy orders by ``seq``)."""
    n: int = 0
    """Centrifuge only: the sender's own count, 0, 1, 2, ..."""
    code: str = ""
    """An ``error`` frame's code (centrifuge's number, as text)."""
    message: str = ""
    """An ``error`` frame's message."""


WaiterKey = str | int
"""What a request waits for: a reply ``type`` (StudyBuddy) or a command id (centrifuge)."""


class Dialect:
    """How a benchmark talks to one kind of server; the socket code is shared."""

    name: ClassVar[str]
    subprotocols: ClassVar[tuple[str, ...]]
    path: ClassVar[str]
    """The WebSocket endpoint on a node."""
    error_key: ClassVar[WaiterKey | None] = None
    """The key of an error that answers whichever request is waiting (StudyBuddy's ``error``)."""

    def decode(self, data: bytes) -> list[Incoming]:
        """The frames in one text message."""
        raise NotImplementedError

    def key(self, frame: Incoming) -> WaiterKey:
        """Which waiter ``frame`` answers."""
        return frame.type

    def hello(self, user_id: str, token: str) -> tuple[bytes, WaiterKey]:
        """The first frame of a socket (auth or connect) and what it waits for."""
        raise NotImplementedError

    def subscribe(self, group: str) -> tuple[bytes, WaiterKey]:
        """Subscribe to a group (StudyBuddy) or channel (centrifuge)."""
        raise NotImplementedError

    def send(self, group: str, body: str, sender: int, n: int) -> bytes:
        """Message ``n`` of benchmark sender ``sender``, not waited for."""
        raise NotImplementedError

    def ordered(self, tally: Tally) -> bool:
        """Whether one receiver saw its messages in order and without gaps."""
        raise NotImplementedError


_decode_studybuddy = msgspec.json.Decoder(Incoming).decode


class StudyBuddyDialect(Dialect):
    """StudyBuddy's JSON subprotocol (contract section 4)."""

    name = "studybuddy"
    subprotocols = ("studybuddy.v1.json",)
    path = "/api/v1/ws"
    error_key = "error"  # the benchmark has one request in flight per socket

    def decode(self, data: bytes) -> list[Incoming]:
        """One frame per text message."""
        return [_decode_studybuddy(data)]

    def hello(self, user_id: str, token: str) -> tuple[bytes, WaiterKey]:
        """``auth`` with an access token; answered by ``ready``."""
        return json.dumps({"type": "auth", "token": token}).encode(), "ready"

    def subscribe(self, group: str) -> tuple[bytes, WaiterKey]:
        """``subscribe``; answered by ``subscribed``."""
        return json.dumps({"type": "subscribe", "group_id": group}).encode(), "subscribed"

    def send(self, group: str, body: str, sender: int, n: int) -> bytes:
        """A ``send`` frame; the node answers with an ``ack``."""
        frame = {"type": "send", "group_id": group, "body": body, "client_msg_id": f"s{sender}-{n}"}
        return json.dumps(frame).encode()

    def ordered(self, tally: Tally) -> bool:
        """Seqs 1, 2, 3, ... with nothing missing (one group, every message)."""
        return tally.seqs == list(range(1, len(tally.seqs) + 1))


class _CentPublication(msgspec.Struct):
    data: Incoming | None = None
    """What our benchmark senders publish is decoded straight into the common frame."""
    offset: int = 0


class _CentResult(msgspec.Struct):
    channel: str = ""
    data: _CentPublication | None = None
    type: int = 0


class _CentError(msgspec.Struct):
    code: int = 0
    message: str = ""


class _CentReply(msgspec.Struct):
    id: int = 0
    result: _CentResult | None = None
    error: _CentError | None = None


_decode_centrifuge = msgspec.json.Decoder(_CentReply).decode_lines
_decode_centrifuge_one = msgspec.json.Decoder(_CentReply).decode
_COMMAND_IDS = itertools.count(1)
"""Centrifuge command ids; unique over the process, so a reply finds its request."""
_CONNECT, _SUBSCRIBE, _PUBLISH = 0, 1, 3
"""centrifugal/protocol 0.3 ``MethodType`` values."""
_PUBLICATION = 0
"""centrifugal/protocol 0.3 ``PushType.PUBLICATION``."""


def _centrifuge_frame(reply: _CentReply) -> Incoming:
    """One centrifuge reply or push as the frame a benchmark looks at."""
    if reply.id and reply.error is not None:
        return Incoming("error", reply.id, code=str(reply.error.code), message=reply.error.message)
    if reply.id:
        return Incoming("reply", seq=reply.id)
    result = reply.result
    if result is None or result.type != _PUBLICATION or (publication := result.data) is None:
        return Incoming("push")
    frame = publication.data
    if frame is None:
        return Incoming("push")
    if publication.offset:  # a node that keeps history numbers the channel's publications
        frame.seq = publication.offset
    return frame


class CentrifugeDialect(Dialect):
    """The JSON protocol of centrifuge 0.15 (centrifugal/protocol 0.3.6).

    Client commands are ``{"id", "method", "params"}`` (method as its number; connect is 0);
    the server answers ``{"id", "result"}`` or ``{"id", "error"}``, and pushes
    ``{"result": {"type", "channel", "data"}}`` without an id, a publication's own ``data``
    inside. One text message may hold several of these, one per line.
    """

    name = "centrifuge"
    subprotocols = ()
    path = "/connection/websocket"

    def decode(self, data: bytes) -> list[Incoming]:
        """Replies become ``reply`` (or ``error``) with the command id in ``seq``."""
        if data.find(b"\n", 0, len(data) - 1) < 0:  # one line: decode_lines costs more
            return [_centrifuge_frame(_decode_centrifuge_one(data))]
        return [_centrifuge_frame(reply) for reply in _decode_centrifuge(data)]

    def key(self, frame: Incoming) -> WaiterKey:
        """A reply's command id; a push answers no request."""
        return frame.seq if frame.type in {"reply", "error"} else frame.type

    def hello(self, user_id: str, token: str) -> tuple[bytes, WaiterKey]:
        """``connect`` without a token: our node takes the user named in its data."""
        command_id = next(_COMMAND_IDS)
        params = {"data": {"user": user_id}}
        return json.dumps({"id": command_id, "method": _CONNECT, "params": params}).encode(), (
            command_id
        )

    def subscribe(self, group: str) -> tuple[bytes, WaiterKey]:
        """``subscribe`` to the channel."""
        command_id = next(_COMMAND_IDS)
        params = {"channel": group}
        return json.dumps({"id": command_id, "method": _SUBSCRIBE, "params": params}).encode(), (
            command_id
        )

    def send(self, group: str, body: str, sender: int, n: int) -> bytes:
        """``publish`` into the channel; the node stamps ``created_at`` and fans it out.

        The data has the fields of :class:`Incoming`, so a receiver decodes it in one step.
        """
        data = {
            "type": "message",
            "client_msg_id": f"s{sender}-{n}",
            "sender": sender,
            "n": n,
            "body": body,
        }
        params = {"channel": group, "data": data}
        return json.dumps({"id": next(_COMMAND_IDS), "method": _PUBLISH, "params": params}).encode()

    def ordered(self, tally: Tally) -> bool:
        """Every sender's messages in its own order, none skipped (no per-channel seq)."""
        return tally.disorders == 0


STUDYBUDDY = StudyBuddyDialect()
CENTRIFUGE = CentrifugeDialect()
DIALECTS: dict[str, Dialect] = {d.name: d for d in (STUDYBUDDY, CENTRIFUGE)}


_EPOCHS: dict[str, float] = {}


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of an ISO stamp; cached, as every receiver sees the same one."""
    epoch = _EPOCHS.get(stamp)
    if epoch is None:
        if len(_EPOCHS) > 10_000:
            _EPOCHS.clear()
        epoch = _EPOCHS[stamp] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return epoch


@dataclass
class Tally:
    """What one receiving socket saw."""

    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    """Created -> arrived at this socket (kernel timestamp)."""
    processed: list[float] = field(default_factory=list)
    """Created -> parsed by this process."""
    next_n: dict[int, int] = field(default_factory=dict)
    """Centrifuge: the count expected next from each sender."""
    disorders: int = 0
    """Centrifuge: messages that were not the one expected next from their sender."""
    frames: int = 0
    """Every frame, when counted (:func:`count_frames`)."""


SO_TIMESTAMPNS = 35
"""Linux: stamp received data with the kernel's arrival time (``struct timespec``)."""
_TIMESPEC = struct.Struct("@qq")


class StampedTransport(asyncio.Transport):
    """A non-blocking socket read with ``recvmsg``, keeping each read's kernel arrival time.

    The benchmark measures publish-to-delivery: when the frame reached this client's socket,
    not when this one Python process got round to it after serving 199 other sockets. The
    time the frame was processed is kept too (``processed``), and reported alongside.
    """

    def __init__(self, sock: socket.socket, protocol: LeanSocket) -> None:
        super().__init__()
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._protocol = protocol
        self._closing = False
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(1 << 18, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        arrived = 0.0
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
                arrived = seconds + nanoseconds / 1e9
        self._protocol.arrived = arrived or time.time()
        self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send now; a benchmark client's frames are small, so the kernel takes them whole."""
        if not self._closing:
            self._sock.sendall(data)

    def pause_reading(self) -> None:
        """Stop reading (a client that stalls): the server's writes pile up."""
        if not self._closing:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())

    def resume_reading(self) -> None:
        """Read again."""
        if not self._closing:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._readable)

    def is_closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def close(self) -> None:
        """Stop reading and close the socket."""
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._protocol.connection_lost(exc)


class LeanSocket(asyncio.Protocol):
    """One benchmark connection."""

    def __init__(
        self,
        url: str,
        on_frame: Callable[[LeanSocket, Incoming], None] | None = None,
        dialect: Dialect = STUDYBUDDY,
    ) -> None:
        self.dialect = dialect
        self.protocol = ClientProtocol(
            parse_uri(url),
            subprotocols=[Subprotocol(p) for p in dialect.subprotocols] or None,
            max_size=2**20,
        )
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.waiters: dict[WaiterKey, asyncio.Future[Incoming]] = {}
        self.on_frame = on_frame
        self.tally = Tally()
        self._pending = b""
        self.close_code: int | None = None
        self.arrived = 0.0
        """Kernel arrival time of the data being parsed."""

    @classmethod
    async def connect(
        cls,
        url: str,
        on_frame: Callable[[LeanSocket, Incoming], None] | None = None,
        receive_buffer: int = 0,
        dialect: Dialect = STUDYBUDDY,
        timeout: float = 10.0,
    ) -> LeanSocket:
        """Open the TCP connection and the WebSocket handshake.

        ``receive_buffer`` caps the kernel's receive buffer (and so the TCP window), like a
        small device on a slow link; 0 leaves it to the kernel.
        """
        loop = asyncio.get_running_loop()
        wsuri = parse_uri(url)
        sock = cls(url, on_frame, dialect)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        try:
            await loop.sock_connect(raw, (wsuri.host, wsuri.port))
        except BaseException:
            raw.close()
            raise
        sock.connection_made(StampedTransport(raw, sock))
        try:
            await asyncio.wait_for(sock.open, timeout)
        except BaseException:
            if sock.transport is not None:
                sock.transport.close()
            raise
        return sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the handshake."""
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        """Parse frames ourselves once open; websockets' protocol does the handshake."""
        if self.open.done():
            self._parse(self._pending + data if self._pending else data)
            return
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response) and self.protocol.handshake_exc is not None:
                self.open.set_exception(self.protocol.handshake_exc)  # e.g. 503: try later
            elif isinstance(event, Response):
                self.open.set_result(None)
            elif isinstance(event, Frame):
                self._frame(event.opcode, bytes(event.data))
        self._flush()

    def _parse(self, buffer: bytes) -> None:
        """Split server frames: never masked, never fragmented (RFC 6455 section 5.2)."""
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            length, head = buffer[pos + 1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4]), 4
            elif length == 127:
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10]), 10
            end = pos + head + length
            if end > size:
                break
            self._frame(buffer[pos] & 0x0F, buffer[pos + head : end])
            pos = end
        self._pending = buffer[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        """Record the close."""
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code or self.protocol.close_code)

    def _frame(self, opcode: int, data: bytes) -> None:
        if opcode == Opcode.PING:
            self.protocol.send_pong(data)
            self._flush()
        if opcode == Opcode.CLOSE and self.transport is not None:
            self.close_code = int.from_bytes(data[:2]) if len(data) >= 2 else 1005
            self.transport.close()
        if opcode != Opcode.TEXT:
            return
        for incoming in self.dialect.decode(data):
            waiter = self.waiters.pop(self.dialect.key(incoming), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(incoming)
            if self.on_frame is not None:
                self.on_frame(self, incoming)

    def send(self, payload: bytes) -> None:
        """Send one text frame."""
        self.protocol.send_text(payload)
        self._flush()

    async def request(self, payload: bytes, key: WaiterKey, timeout: float = 10.0) -> Incoming:
        """Send and wait for the next frame answering ``key`` (a reply type or command id)."""
        future: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        self.waiters[key] = future
        if self.dialect.error_key is not None:
            self.waiters[self.dialect.error_key] = future
        self.send(payload)
        await asyncio.wait((future, self.closed), timeout=timeout, return_when="FIRST_COMPLETED")
        if self.dialect.error_key is not None:
            self.waiters.pop(self.dialect.error_key, None)
        self.waiters.pop(key, None)
        if not future.done():
            future.cancel()
            if self.closed.done():
                raise ConnectionError(f"closed with {self.closed.result()} before a reply")
            raise TimeoutError(f"no reply in {timeout} s to {payload[:200]!r}")
        reply = future.result()
        if reply.type == "error":
            raise RuntimeError(f"error {reply.code} {reply.message[:80]!r} to {payload[:60]!r}")
        return reply

    async def hello(self, user_id: str, token: str, timeout: float = 10.0) -> Incoming:
        """Authenticate (StudyBuddy ``auth``) or connect (centrifuge)."""
        return await self.request(*self.dialect.hello(user_id, token), timeout)

    async def subscribe(self, group: str, timeout: float = 10.0) -> Incoming:
        """Subscribe and wait until the server confirms."""
        return await self.request(*self.dialect.subscribe(group), timeout)

    def close(self) -> None:
        """Close politely."""
        if self.transport is not None and not self.transport.is_closing():
            self.protocol.send_close(1000)
            self._flush()
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.close()


def record_messages(sock: LeanSocket, frame: Incoming) -> None:
    """Tally seq (or a sender's count) and latency of every ``message`` frame."""
    if frame.type == "message":
        tally = sock.tally
        if frame.sender >= 0:
            if tally.next_n.get(frame.sender, 0) != frame.n:
                tally.disorders += 1
            tally.next_n[frame.sender] = frame.n + 1
            tally.seqs.append(frame.n)
        else:
            tally.seqs.append(frame.seq)
        created = _epoch(frame.created_at)
        tally.latencies.append(sock.arrived - created)
        tally.processed.append(time.time() - created)


def count_frames(sock: LeanSocket, frame: Incoming) -> None:
    """Count every frame a socket receives (presence, acks, replies, messages)."""
    del frame
    sock.tally.frames += 1
