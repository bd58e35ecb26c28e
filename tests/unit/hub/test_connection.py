"""A socket's outbound side over plain ASGI ``send``: queue, writer task, overflow policy."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

import server.hub.connection as connection_module
import server.hub.outlet as outlet_module
from protocol.codec import JSON, MSGPACK
from protocol.errors import CloseCode
from protocol.frames import Pong, Presence, TypingNotice
from server.hub.connection import Connection, Outgoing
from server.observability.metrics import FRAMES
from server.realtime.envelope import Kind
from tests.fixtures.fake_asgi import USER, FakeSocket, make_connection

GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def json_item(kind: Kind, seq: int, text: str = '{"type":"pong"}') -> Outgoing:
    """An outgoing frame as it arrives from the bus."""
    return Outgoing.from_json(kind, seq, text.encode(), "pong")


def counter(name: str) -> float:
    """The current value of a process-wide counter."""
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
async def socket() -> AsyncIterator[FakeSocket]:
    """A well-behaved client socket."""
    yield FakeSocket()


# --- Outgoing ------------------------------------------------------------------------------


def test_direct_json_is_text_with_the_frame_type() -> None:
    """A reply on the JSON codec is encoded once, as text, sized by that text."""
    item = Outgoing.direct(JSON, Pong(ref=3))
    assert item.text() == '{"type":"pong","ref":3}'
    assert item.type == "pong"
    assert item.kind is Kind.EVENT
    assert item.seq == 0
    assert item.size == len(item.text())


def test_direct_msgpack_is_binary_without_text() -> None:
    """A reply on the MessagePack codec is bytes, with the same fields as JSON."""
    frame = Presence(group_id=GROUP, user_id=USER, status="online")
    item = Outgoing.direct(MSGPACK, frame, Kind.EPHEMERAL)
    assert item.data is None
    assert item.kind is Kind.EPHEMERAL
    assert item.type == "presence"
    assert item.size == len(item.binary())
    assert msgspec.msgpack.decode(item.binary()) == msgspec.json.decode(JSON.encode(frame))


def test_binary_form_is_derived_once_from_json() -> None:
    """The MessagePack form of a bus frame is made on first need and then shared."""
    item = json_item(Kind.MESSAGE, 4, '{"type":"message","seq":4,"body":"hé"}')
    first = item.binary()
    assert item.binary() is first
    assert msgspec.msgpack.decode(first) == {"type": "message", "seq": 4, "body": "hé"}


# --- writing -------------------------------------------------------------------------------


async def test_frames_are_written_in_order(socket: FakeSocket) -> None:
    """Whatever is offered is written as text frames, in offer order."""
    conn = make_connection(socket)
    for seq in range(1, 6):
        conn.offer(json_item(Kind.MESSAGE, seq, f'{{"type":"message","seq":{seq}}}'))
    await socket.wait_for(5)
    assert [m["text"] for m in socket.frames] == [
        f'{{"type":"message","seq":{seq}}}' for seq in range(1, 6)
    ]
    await conn.stop()


async def test_frames_offered_while_idle_wake_the_writer(socket: FakeSocket) -> None:
    """The writer sleeps on an empty queue and wakes for the next frame."""
    conn = make_connection(socket)
    conn.reply(Pong(ref=1))
    await socket.wait_for(1)
    await asyncio.sleep(0.01)
    conn.reply(Pong(ref=2))
    await socket.wait_for(2)
    assert [m["text"] for m in socket.frames] == [
        '{"type":"pong","ref":1}',
        '{"type":"pong","ref":2}',
    ]
    await conn.stop()


async def test_msgpack_connection_writes_bytes_with_the_same_fields(socket: FakeSocket) -> None:
    """On the MessagePack subprotocol a JSON bus frame is written as binary, same fields."""
    conn = make_connection(socket, codec=MSGPACK)
    item = json_item(Kind.MESSAGE, 1, '{"type":"message","seq":1,"body":"hi"}')
    conn.offer(item)
    conn.reply(Pong(ref="r"))
    await socket.wait_for(2)
    assert all("bytes" in m and "text" not in m for m in socket.frames)
    assert socket.frames[0]["bytes"] is item.binary()
    assert msgspec.msgpack.decode(socket.frames[0]["bytes"]) == {
        "type": "message",
        "seq": 1,
        "body": "hi",
    }
    assert msgspec.msgpack.decode(socket.frames[1]["bytes"]) == {"type": "pong", "ref": "r"}
    await conn.stop()


async def test_one_outgoing_is_shared_by_every_recipient() -> None:
    """Two MessagePack sockets get the very same bytes object: encoded once per node."""
    first, second = FakeSocket(), FakeSocket()
    a, b = make_connection(first, codec=MSGPACK), make_connection(second, codec=MSGPACK)
    item = json_item(Kind.MESSAGE, 1)
    for conn in (a, b):
        conn.offer(item)
    await first.wait_for(1)
    await second.wait_for(1)
    assert first.frames[0]["bytes"] is second.frames[0]["bytes"]
    await a.stop()
    await b.stop()


async def test_written_frames_are_tallied_by_type(socket: FakeSocket) -> None:
    """Every written frame counts in the outbound frame tally under its type."""
    before = FRAMES.counts.get(("out", "pong"), 0)
    conn = make_connection(socket)
    for ref in range(3):
        conn.reply(Pong(ref=ref))
    await socket.wait_for(3)
    assert FRAMES.counts.get(("out", "pong"), 0) - before == 3
    await conn.stop()


async def test_fanout_latency_is_sampled(socket: FakeSocket) -> None:
    """Frames with a creation time feed the fan-out latency histogram, one in sixteen."""
    before = counter("studybuddy_fanout_latency_seconds_count")
    conn = make_connection(socket)
    for seq in range(outlet_module.LATENCY_SAMPLE):
        created = time.time()
        conn.offer(Outgoing.from_json(Kind.MESSAGE, seq, b"{}", "message", created=created))
    await socket.wait_for(outlet_module.LATENCY_SAMPLE)
    assert counter("studybuddy_fanout_latency_seconds_count") - before == 1
    await conn.stop()


# --- overflow policy -----------------------------------------------------------------------


async def test_full_queue_drops_ephemeral_frames(socket: FakeSocket) -> None:
    """Over ``max_frames`` queued, a typing frame is dropped and counted; the socket stays."""
    conn = make_connection(socket, max_frames=2)
    before = counter("studybuddy_ws_queue_drops_total")
    conn.offer(json_item(Kind.MESSAGE, 1))
    conn.offer(json_item(Kind.MESSAGE, 2))
    typing = Outgoing.direct(JSON, TypingNotice(group_id=GROUP, user_id=USER), Kind.EPHEMERAL)
    conn.offer(typing)
    assert counter("studybuddy_ws_queue_drops_total") - before == 1
    assert conn.close_code is None
    await socket.wait_for(2)
    await asyncio.sleep(0.01)
    assert len(socket.frames) == 2
    assert socket.closes == []
    await conn.stop()


async def test_full_queue_closes_slow_consumer_for_other_kinds(socket: FakeSocket) -> None:
    """Over ``max_frames`` queued, a non-ephemeral frame closes the socket with 4010."""
    closed: list[str] = []
    conn = make_connection(socket, max_frames=2, on_closed=lambda: closed.append("closed"))
    before = counter("studybuddy_ws_slow_consumer_closes_total")
    conn.offer(json_item(Kind.MESSAGE, 1))
    conn.offer(json_item(Kind.MESSAGE, 2))
    conn.offer(json_item(Kind.EVENT, 0))
    assert conn.close_code == 4010
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert socket.closes == [{"type": "websocket.close", "code": 4010, "reason": "slow consumer"}]
    assert socket.frames == []
    assert closed == ["closed"]
    assert counter("studybuddy_ws_slow_consumer_closes_total") - before == 1


async def test_byte_budget_overflow_closes_with_4010(socket: FakeSocket) -> None:
    """Over ``max_bytes`` queued also means a slow consumer, whatever the frame count."""
    conn = make_connection(socket, max_frames=100, max_bytes=40)
    conn.offer(json_item(Kind.MESSAGE, 1, '{"type":"message","seq":1}'))  # 26 bytes
    assert conn.close_code is None
    conn.offer(json_item(Kind.MESSAGE, 2, '{"type":"message","seq":2}'))
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert [m["code"] for m in socket.closes] == [4010]


async def test_byte_budget_overflow_drops_ephemeral(socket: FakeSocket) -> None:
    """Over ``max_bytes``, an ephemeral frame is dropped instead of closing."""
    conn = make_connection(socket, max_frames=100, max_bytes=40)
    before = counter("studybuddy_ws_queue_drops_total")
    conn.offer(json_item(Kind.MESSAGE, 1, '{"type":"message","seq":1}'))
    conn.offer(json_item(Kind.EPHEMERAL, 0, '{"type":"typing","user":"someone"}'))
    assert conn.close_code is None
    assert counter("studybuddy_ws_queue_drops_total") - before == 1


# --- closing -------------------------------------------------------------------------------


async def test_close_is_idempotent(socket: FakeSocket) -> None:
    """Closing twice sends one close frame and keeps the first code."""
    calls: list[int] = []
    conn = make_connection(socket, on_closed=lambda: calls.append(1))
    conn.close(CloseCode.GOING_AWAY, "bye")
    conn.close(CloseCode.SLOW_CONSUMER, "again")
    await asyncio.wait_for(conn.closed.wait(), 2)
    await asyncio.sleep(0.01)
    assert socket.closes == [{"type": "websocket.close", "code": 1001, "reason": "bye"}]
    assert conn.close_code == CloseCode.GOING_AWAY
    assert calls == [1]


async def test_offer_after_close_is_ignored(socket: FakeSocket) -> None:
    """Nothing offered after close reaches the socket or closes it again."""
    conn = make_connection(socket, max_frames=1)
    conn.close(CloseCode.GOING_AWAY)
    for seq in range(5):
        conn.offer(json_item(Kind.MESSAGE, seq))
    await asyncio.wait_for(conn.closed.wait(), 2)
    await asyncio.sleep(0.01)
    assert socket.frames == []
    assert [m["code"] for m in socket.closes] == [1001]


async def test_close_flushes_what_is_queued_then_closes(socket: FakeSocket) -> None:
    """A plain close lets the writer send what was already queued, then the close frame."""
    conn = make_connection(socket)
    for seq in range(3):
        conn.offer(json_item(Kind.MESSAGE, seq, f'{{"seq":{seq}}}'))
    await asyncio.sleep(0)
    conn.close(CloseCode.GOING_AWAY, "restarting")
    conn.offer(json_item(Kind.MESSAGE, 9, '{"seq":9}'))
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert [m.get("text") for m in socket.messages] == ['{"seq":0}', '{"seq":1}', '{"seq":2}', None]
    assert socket.messages[-1] == {"type": "websocket.close", "code": 1001, "reason": "restarting"}


async def test_close_without_flush_drops_what_is_queued(socket: FakeSocket) -> None:
    """``flush=False`` discards queued frames; only the close frame is sent."""
    conn = make_connection(socket)
    for seq in range(3):
        conn.offer(json_item(Kind.MESSAGE, seq))
    conn.close(CloseCode.GOING_AWAY, flush=False)
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert socket.frames == []
    assert [m["code"] for m in socket.closes] == [1001]


async def test_close_right_after_an_offer_writes_the_frame_then_closes(socket: FakeSocket) -> None:
    """The writer starts on demand: a frame queued just before a close still goes out first."""
    calls: list[int] = []
    conn = make_connection(socket, on_closed=lambda: calls.append(1))
    conn.offer(json_item(Kind.MESSAGE, 1))
    conn.close(CloseCode.UNAUTHORIZED, "token expired")
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert [m["type"] for m in socket.messages] == ["websocket.send", "websocket.close"]
    assert socket.messages[-1] == {
        "type": "websocket.close",
        "code": 4001,
        "reason": "token expired",
    }
    assert calls == [1]


async def test_close_with_nothing_queued_sends_the_close_at_once(socket: FakeSocket) -> None:
    """No writer is running: closing starts one just to send the close frame."""
    conn = make_connection(socket)
    conn.close(CloseCode.UNAUTHORIZED, "token expired")
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert socket.messages == [{"type": "websocket.close", "code": 4001, "reason": "token expired"}]


async def test_stuck_client_does_not_block_offer_and_close_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that never reads: offer stays instant, overflow closes, close gives up in time."""
    monkeypatch.setattr(connection_module, "CLOSE_TIMEOUT_S", 0.1)
    socket = FakeSocket(stuck=True)
    closed: list[str] = []
    conn = make_connection(socket, max_frames=3, on_closed=lambda: closed.append("closed"))
    conn.offer(json_item(Kind.MESSAGE, 0))
    await asyncio.sleep(0.01)  # the writer is now stuck inside send()
    started = time.monotonic()
    for seq in range(1, 4):
        conn.offer(json_item(Kind.MESSAGE, seq))
    assert time.monotonic() - started < 0.05
    assert conn.close_code is None
    conn.offer(json_item(Kind.MESSAGE, 4))
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await asyncio.wait_for(conn.closed.wait(), 1.0)
    assert time.monotonic() - started < 1.0
    assert closed == ["closed"]
    assert socket.messages == []


async def test_stop_cancels_the_writer(socket: FakeSocket) -> None:
    """After stop the writer is gone: later frames are not written; ``closed`` is set."""
    conn = make_connection(socket)
    conn.reply(Pong(ref=1))
    await socket.wait_for(1)
    await conn.stop()
    assert conn.closed.is_set()
    conn.reply(Pong(ref=2))
    await asyncio.sleep(0.01)
    assert len(socket.frames) == 1


async def test_stop_of_a_writer_stuck_in_send_returns() -> None:
    """Stopping while the writer waits on a stuck client cancels that send."""
    socket = FakeSocket(stuck=True)
    conn = make_connection(socket)
    conn.reply(Pong())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(conn.stop(), 1.0)
    assert conn.closed.is_set()


async def test_stop_without_start_sets_closed(socket: FakeSocket) -> None:
    """A connection that never started a writer can still be stopped."""
    conn = make_connection(socket)
    await conn.stop()
    assert conn.closed.is_set()


async def test_a_peer_gone_mid_write_ends_the_connection() -> None:
    """``send`` failing (the client vanished) marks the connection closed; nothing is retried."""

    async def gone(message: dict[str, Any]) -> None:
        raise OSError("connection reset")

    conn = Connection(gone, JSON, USER, "s-1", 100, 1 << 20)
    conn.offer(json_item(Kind.MESSAGE, 1))
    conn.offer(json_item(Kind.MESSAGE, 2))
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert conn.close_code == CloseCode.GOING_AWAY
    assert conn.outlet.backlog() == (0, 0)
