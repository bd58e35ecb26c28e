"""A lean socket client for benchmarks: asyncio protocol + websockets' sans-I/O protocol.

The benchmark client shares two cores with the nodes, Redis and PostgreSQL, so it must cost
as little as possible per frame: no per-frame task, one msgspec decode into a small Struct.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri


class Incoming(msgspec.Struct):
    """The fields a benchmark looks at."""

    type: str
    seq: int = 0
    created_at: str = ""
    client_msg_id: str = ""


_decode = msgspec.json.Decoder(Incoming).decode


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
        self, url: str, on_frame: Callable[[LeanSocket, Incoming], None] | None = None
    ) -> None:
        self.protocol = ClientProtocol(
            parse_uri(url), subprotocols=[Subprotocol("studybuddy.v1.json")], max_size=2**20
        )
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.waiters: dict[str, asyncio.Future[Incoming]] = {}
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
    ) -> LeanSocket:
        """Open the TCP connection and the WebSocket handshake.

        ``receive_buffer`` caps the kernel's receive buffer (and so the TCP window), like a
        small device on a slow link; 0 leaves it to the kernel.
        """
        loop = asyncio.get_running_loop()
        wsuri = parse_uri(url)
        sock = cls(url, on_frame)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await loop.sock_connect(raw, (wsuri.host, wsuri.port))
        sock.connection_made(StampedTransport(raw, sock))
        await asyncio.wait_for(sock.open, 10)
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
            if isinstance(event, Response):
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
        incoming = _decode(data)
        waiter = self.waiters.pop(incoming.type, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(incoming)
        if self.on_frame is not None:
            self.on_frame(self, incoming)

    def send(self, payload: bytes) -> None:
        """Send one text frame."""
        self.protocol.send_text(payload)
        self._flush()

    async def request(self, payload: bytes, reply_type: str, timeout: float = 10.0) -> Incoming:
        """Send and wait for the next frame of ``reply_type``."""
        future: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        self.waiters[reply_type] = future
        self.send(payload)
        return await asyncio.wait_for(future, timeout)

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
    """Tally seq and latency of every ``message`` frame."""
    if frame.type == "message":
        sock.tally.seqs.append(frame.seq)
        created = _epoch(frame.created_at)
        sock.tally.latencies.append(sock.arrived - created)
        sock.tally.processed.append(time.time() - created)
