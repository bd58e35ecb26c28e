"""The direct path: frames coalesced per loop turn and written to the transport.

Its backlog is read from the transport's buffer; the overflow and close policy sit on top.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

import server.hub.connection as connection_module
from protocol.codec import JSON, MSGPACK, Codec
from protocol.errors import CloseCode
from protocol.frames import Pong
from server.hub.connection import Connection
from server.hub.outlet import Cork, DirectOutlet, Outgoing
from server.realtime.envelope import Kind

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")


class FakeTransport:
    """Our side of the ``studybuddy.frames`` extension, over an in-memory buffer.

    ``stuck`` models a peer that stopped reading: everything written stays buffered until
    :meth:`drain` lets some of it go.
    """

    def __init__(self, log: list[str] | None = None, *, stuck: bool = False) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.stuck = stuck
        self.closing = False
        self.aborted = False
        self.log = log if log is not None else []

    def write_frame(self, data: bytes) -> bool:
        """Take bytes unless closing."""
        if self.closing:
            return False
        self.writes.append(data)
        self.log.append("write")
        if self.stuck:
            self.buffered += len(data)
        return True

    def write_buffer_size(self) -> int:
        """What the peer has not taken."""
        return self.buffered

    def abort_transport(self) -> None:
        """Drop the connection."""
        self.aborted = True

    def drain(self, count: int) -> None:
        """The peer reads ``count`` bytes."""
        self.buffered = max(0, self.buffered - count)

    def payloads(self) -> list[tuple[Opcode, bytes]]:
        """Every frame written so far, parsed as a client parses them."""
        reader = StreamReader()
        reader.feed_data(b"".join(self.writes))
        reader.feed_eof()
        frames = []
        while reader.buffer:
            parser = Frame.parse(reader.read_exact, mask=False)
            try:
                next(parser)
            except StopIteration as done:
                frame: Frame = done.value
                frames.append((frame.opcode, bytes(frame.data)))
        return frames


class FakeSend:
    """ASGI ``send`` for the close frame; optionally stuck forever."""

    def __init__(self, log: list[str], *, stuck: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.log = log
        self.stuck = stuck

    async def __call__(self, message: dict[str, Any]) -> None:
        """Record the message."""
        if self.stuck:
            await asyncio.Event().wait()
        self.log.append(message["type"])
        self.messages.append(message)


def direct(
    transport: FakeTransport,
    send: FakeSend | None = None,
    *,
    codec: Codec = JSON,
    max_frames: int = 100,
    max_bytes: int = 1 << 20,
    cork: Cork | None = None,
) -> Connection:
    """A connection on the direct path."""
    return Connection(
        send or FakeSend([]),
        codec,
        USER,
        "s-1",
        max_frames,
        max_bytes,
        writer=transport,
        cork=cork,
    )


def message(seq: int, kind: Kind = Kind.MESSAGE) -> Outgoing:
    """A frame as it arrives from the bus."""
    return Outgoing.from_json(kind, seq, f'{{"type":"message","seq":{seq}}}'.encode(), "message")


async def next_turn() -> None:
    """Let the loop run the cork's release."""
    await asyncio.sleep(0)


async def test_frames_of_one_turn_go_out_in_one_write() -> None:
    """Nothing is written during the turn; at its end, one write carries every frame, in order."""
    transport = FakeTransport()
    conn = direct(transport)
    for seq in (1, 2, 3):
        conn.offer(message(seq))
    assert transport.writes == []
    await next_turn()
    assert len(transport.writes) == 1
    assert transport.payloads() == [
        (Opcode.TEXT, f'{{"type":"message","seq":{seq}}}'.encode()) for seq in (1, 2, 3)
    ]


async def test_a_frame_is_framed_once_for_every_socket() -> None:
    """Two sockets get the very same frame bytes: encoded and framed once per node."""
    cork = Cork()
    first, second = FakeTransport(), FakeTransport()
    item = message(1)
    for conn in (direct(first, cork=cork), direct(second, cork=cork)):
        conn.offer(item)
    await next_turn()
    assert first.writes[0] is second.writes[0] is item.wire(False)


async def test_msgpack_sockets_get_binary_frames() -> None:
    """On the MessagePack subprotocol, bus frames and replies go out as binary frames."""
    transport = FakeTransport()
    conn = direct(transport, codec=MSGPACK)
    conn.offer(message(7))
    conn.reply(Pong(ref=2))
    await next_turn()
    frames = transport.payloads()
    assert [opcode for opcode, _ in frames] == [Opcode.BINARY, Opcode.BINARY]
    assert msgspec.msgpack.decode(frames[0][1]) == {"type": "message", "seq": 7}
    assert msgspec.msgpack.decode(frames[1][1]) == {"type": "pong", "ref": 2}


async def test_backlog_follows_the_transport_buffer() -> None:
    """Frames the peer has not read count as queued, in frames and bytes, until read."""
    transport = FakeTransport(stuck=True)
    conn = direct(transport)
    outlet = conn.outlet
    assert isinstance(outlet, DirectOutlet)
    sizes = []
    for seq in (1, 2, 3):
        conn.offer(message(seq))
        assert outlet.backlog() == (len(sizes) + 1, sum(sizes) + message(seq).size + 2)
        await next_turn()
        sizes.append(len(transport.writes[-1]))
    assert outlet.backlog() == (3, sum(sizes))
    transport.drain(sizes[0])
    assert outlet.backlog() == (2, sizes[1] + sizes[2])
    transport.drain(sizes[1] + 1)
    assert outlet.backlog() == (1, sizes[2] - 1)
    transport.drain(sizes[2])
    assert outlet.backlog() == (0, 0)


async def test_full_backlog_drops_ephemera_and_closes_slow_consumers() -> None:
    """Over max_frames unread: typing is dropped, a message closes the socket with 4010."""
    log: list[str] = []
    transport, send = FakeTransport(log, stuck=True), FakeSend(log)
    conn = direct(transport, send, max_frames=2)
    for seq in (1, 2):
        conn.offer(message(seq))
        await next_turn()
    conn.offer(message(0, Kind.EPHEMERAL))
    assert conn.close_code is None
    conn.offer(message(3))
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert len(transport.writes) == 2
    assert send.messages == [{"type": "websocket.close", "code": 4010, "reason": "slow consumer"}]


async def test_byte_budget_counts_what_is_buffered() -> None:
    """Over max_bytes unread also closes with 4010."""
    transport = FakeTransport(stuck=True)
    conn = direct(transport, max_bytes=40)
    conn.offer(message(1))
    await next_turn()
    conn.offer(message(2))
    assert conn.close_code == CloseCode.SLOW_CONSUMER


async def test_close_writes_what_was_offered_first() -> None:
    """Frames offered in the same turn as a close go out before the close frame."""
    log: list[str] = []
    transport, send = FakeTransport(log), FakeSend(log)
    conn = direct(transport, send)
    conn.offer(message(1))
    conn.close(CloseCode.GOING_AWAY, "restarting")
    conn.offer(message(2))
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert log == ["write", "websocket.close"]
    assert transport.payloads() == [(Opcode.TEXT, b'{"type":"message","seq":1}')]


async def test_abortive_close_drops_what_is_held() -> None:
    """``flush=False`` forgets frames not yet written; only the close goes out."""
    log: list[str] = []
    transport, send = FakeTransport(log), FakeSend(log)
    conn = direct(transport, send)
    conn.offer(message(1))
    conn.close(CloseCode.SLOW_CONSUMER, "slow consumer", flush=False)
    await asyncio.wait_for(conn.closed.wait(), 2)
    await next_turn()
    assert log == ["websocket.close"]


async def test_a_stuck_peer_is_dropped_after_the_close_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A close that cannot be sent (the peer reads nothing) ends with the transport aborted."""
    monkeypatch.setattr(connection_module, "CLOSE_TIMEOUT_S", 0.05)
    closed: list[int] = []
    transport = FakeTransport(stuck=True)
    conn = Connection(
        FakeSend([], stuck=True),
        JSON,
        USER,
        "s-1",
        100,
        1 << 20,
        on_closed=lambda: closed.append(1),
        writer=transport,
    )
    conn.close(CloseCode.SLOW_CONSUMER, "slow consumer", flush=False)
    await asyncio.wait_for(conn.closed.wait(), 1)
    assert transport.aborted
    assert closed == [1]


async def test_a_closing_transport_takes_nothing() -> None:
    """Once the server side is closing, writes are refused and nothing counts as queued."""
    transport = FakeTransport()
    transport.closing = True
    conn = direct(transport)
    conn.offer(message(1))
    await next_turn()
    assert transport.writes == []
    assert conn.outlet.backlog() == (0, 0)


async def test_stop_forgets_held_frames() -> None:
    """After stop (the socket is gone), nothing held is written and later offers are ignored."""
    transport = FakeTransport()
    conn = direct(transport)
    conn.offer(message(1))
    await conn.stop()
    conn.offer(message(2))
    await next_turn()
    assert transport.writes == []
    assert conn.closed.is_set()


async def test_frames_written_together_count_one_by_one() -> None:
    """Three frames in one write, none read yet: the backlog is three frames, not one."""
    transport = FakeTransport(stuck=True)
    conn = direct(transport)
    for seq in (1, 2, 3):
        conn.offer(message(seq))
    await next_turn()
    assert len(transport.writes) == 1
    assert conn.outlet.backlog() == (3, len(transport.writes[0]))
    transport.drain(len(message(1).wire(False)))
    assert conn.outlet.backlog()[0] == 2


class BrokenTransport(FakeTransport):
    """A transport whose write raises."""

    def write_frame(self, data: bytes) -> bool:
        """Fail."""
        raise OSError("broken pipe")


async def test_one_broken_transport_does_not_hold_up_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A write that raises is logged; the other sockets of the same turn still get theirs."""
    cork = Cork()
    broken, healthy = BrokenTransport(), FakeTransport()
    first, second = direct(broken, cork=cork), direct(healthy, cork=cork)
    for conn in (first, second):
        conn.offer(message(1))
    await next_turn()
    assert healthy.payloads() == [(Opcode.TEXT, b'{"type":"message","seq":1}')]
    assert "socket write failed" in caplog.text
    first.offer(message(2))  # nothing left held: the next turn is scheduled afresh
    await next_turn()
