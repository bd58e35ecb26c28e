"""A WebSocket client for Locust users: websockets' sans-I/O protocol on a gevent socket.

Locust runs every simulated user in a greenlet and patches ``socket`` so blocking calls
yield. This client keeps that model: the user's greenlet sends, one reader greenlet per
socket receives, and both drive websockets' ``ClientProtocol`` (no I/O of its own, the same
library the server uses). Frames are encoded and decoded with ``protocol/``'s client codecs,
JSON or MessagePack. A frame carrying a ``ref`` wakes whoever :meth:`request`-ed it; every
frame also goes to the ``on_frame`` callback with the time its bytes arrived.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
import msgspec
from gevent.event import AsyncResult
from gevent.lock import Semaphore
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from protocol.codec import ClientCodec
from protocol.frames import ClientFrame, ServerFrames

WS_PATH = "/api/v1/ws"
MAX_FRAME = 1 << 20
OnFrame = Callable[[ServerFrames, float, int], None]
"""Called with each decoded frame, its arrival time (``time.time()``) and its size."""


class SocketClosedError(ConnectionError):
    """The socket is closed (by either side); ``code`` is the close code, if any."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"socket closed ({code})")
        self.code = code


def socket_url(host: str) -> str:
    """The socket endpoint of an HTTP base URL (``http://h:p`` -> ``ws://h:p/api/v1/ws``)."""
    parts = urlsplit(host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, WS_PATH, "", ""))


class GeventWebSocket:
    """One client connection; open it with :meth:`connect`."""

    def __init__(
        self, sock: socket.socket, protocol: ClientProtocol, codec: ClientCodec, on_frame: OnFrame
    ) -> None:
        self._sock = sock
        self._protocol = protocol
        self._codec = codec
        self._on_frame = on_frame
        self._write_lock = Semaphore()
        self._waiters: dict[str | int, AsyncResult] = {}
        self._fragments: list[bytes] = []
        self.decode_errors = 0
        self.closed = False
        self._reader: Any = None

    @classmethod
    def connect(
        cls,
        url: str,
        codec: ClientCodec,
        on_frame: OnFrame,
        source: str | None = None,
        timeout: float = 10.0,
    ) -> GeventWebSocket:
        """Open TCP from ``source`` and do the opening handshake; start the reader.

        Raises:
            OSError: the connection failed or timed out.
            websockets.exceptions.InvalidHandshake: the server refused the upgrade.
        """
        uri = parse_uri(url)
        sock = socket.create_connection(
            (uri.host, uri.port), timeout, source_address=(source, 0) if source else None
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protocol = ClientProtocol(
            uri, subprotocols=[Subprotocol(codec.subprotocol)], max_size=MAX_FRAME
        )
        client = cls(sock, protocol, codec, on_frame)
        try:
            client._handshake()
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        client._reader = gevent.spawn(client._read)
        return client

    def _handshake(self) -> None:
        self._protocol.send_request(self._protocol.connect())
        self._flush()
        while self._protocol.state is State.CONNECTING:
            data = self._sock.recv(1 << 16)
            if not data:
                raise SocketClosedError(None)
            self._protocol.receive_data(data)
        if self._protocol.handshake_exc is not None:
            raise self._protocol.handshake_exc
        self._handle(self._protocol.events_received(), time.time())

    def _read(self) -> None:
        try:
            while True:
                data = self._sock.recv(1 << 16)
                arrived = time.time()
                if data:
                    self._protocol.receive_data(data)
                else:
                    self._protocol.receive_eof()
                self._handle(self._protocol.events_received(), arrived)
                self._flush()
                if not data or self._protocol.state is State.CLOSED:
                    return
        except OSError:
            return
        finally:
            self._closed()

    def _handle(self, events: list[Any], arrived: float) -> None:
        for event in events:
            if isinstance(event, Response) or not isinstance(event, Frame):
                continue
            data = self._assemble(event)
            if data is None:
                continue
            try:
                frame = self._codec.decode(data)
            except msgspec.DecodeError:
                self.decode_errors += 1
                continue
            ref = getattr(frame, "ref", msgspec.UNSET)
            waiter = self._waiters.pop(ref, None) if ref is not msgspec.UNSET else None
            if waiter is not None:
                waiter.set(frame)
            self._on_frame(frame, arrived, len(data))

    def _assemble(self, frame: Frame) -> bytes | None:
        """A whole message's payload, or None (a control frame, or more fragments due)."""
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                return data
        return None

    def _closed(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
        error = SocketClosedError(self.close_code)
        for waiter in self._waiters.values():
            waiter.set_exception(error)
        self._waiters.clear()

    @property
    def close_code(self) -> int | None:
        """The close code received or sent, once closed."""
        return self._protocol.close_code

    def send(self, frame: ClientFrame) -> None:
        """Send one frame.

        Raises:
            SocketClosedError: the socket is closed.
        """
        payload = self._codec.encode(frame)
        try:
            if self._codec.binary:
                self._protocol.send_binary(payload)
            else:
                self._protocol.send_text(payload)
        except InvalidState:
            raise SocketClosedError(self.close_code) from None
        self._flush()

    def request(self, frame: ClientFrame, timeout: float = 10.0) -> ServerFrames:
        """Send a frame with a ``ref`` and wait for the frame that echoes it.

        Raises:
            SocketClosedError: the socket closed first.
            TimeoutError: no answer within ``timeout``.
        """
        if frame.ref is None:
            raise ValueError("request() needs a frame with a ref")
        result = AsyncResult()
        self._waiters[frame.ref] = result
        self.send(frame)
        try:
            answer: ServerFrames = result.get(timeout=timeout)
        except gevent.Timeout:
            self._waiters.pop(frame.ref, None)
            raise TimeoutError(f"no answer to {frame.ref!r} within {timeout} s") from None
        return answer

    def _flush(self) -> None:
        with self._write_lock:
            for data in self._protocol.data_to_send():
                try:
                    if data:
                        self._sock.sendall(data)
                    else:
                        self._sock.shutdown(socket.SHUT_WR)
                except OSError:
                    return

    def close(self, timeout: float = 2.0) -> None:
        """Close politely (1000), wait briefly for the server's answer, then drop."""
        if not self.closed:
            with contextlib.suppress(InvalidState):
                self._protocol.send_close(1000)
            self._flush()
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader.kill(block=False)
        self._closed()
