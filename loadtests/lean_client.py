"""A lean socket client for benchmarks: asyncio protocol + websockets' sans-I/O protocol.

The benchmark client shares two cores with the nodes, Redis and PostgreSQL, so it must cost
as little as possible per frame: no per-frame task, one msgspec decode into a small Struct.
"""

from __future__ import annotations

import asyncio
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


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Tally:
    """What one receiving socket saw."""

    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


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

    @classmethod
    async def connect(
        cls, url: str, on_frame: Callable[[LeanSocket, Incoming], None] | None = None
    ) -> LeanSocket:
        """Open the TCP connection and the WebSocket handshake."""
        loop = asyncio.get_running_loop()
        wsuri = parse_uri(url)
        sock = cls(url, on_frame)
        await loop.create_connection(lambda: sock, wsuri.host, wsuri.port)
        await asyncio.wait_for(sock.open, 10)
        return sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the handshake."""
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the protocol and handle the events."""
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self.open.set_result(None)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        """Record the close."""
        if not self.closed.done():
            self.closed.set_result(self.protocol.close_code)

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.TEXT:
            return
        incoming = _decode(frame.data)
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
        sock.tally.latencies.append(time.time() - _epoch(frame.created_at))
