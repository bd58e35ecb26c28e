"""Presence diffs from the bus, told to each subscriber as it asked; this node's own, batched."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import server.hub.presence_feed as feed_module
from protocol.frames import PresenceDiff
from server.bus.memory import MemoryBus
from server.hub.connection import Connection
from server.hub.presence_feed import PresenceFeed, set_mode
from server.realtime.envelope import Kind, group_channel, pack, unpack
from server.realtime.registry import MemoryRegistry
from tests.fixtures.fake_asgi import FakeSocket, make_connection

GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
ALICE = uuid.UUID("00000000-0000-4000-8000-000000000011")
BOB = uuid.UUID("00000000-0000-4000-8000-000000000012")


def diff(online: list[uuid.UUID], offline: list[uuid.UUID]) -> bytes:
    """A diff frame as it travels on the bus."""
    frame = PresenceDiff(group_id=GROUP, online=online, offline=offline)
    return unpack(pack(Kind.PRESENCE, frame)).frame


async def subscriber(mode: str) -> tuple[Connection, FakeSocket]:
    """A subscriber of GROUP that asked for presence ``mode``."""
    socket = FakeSocket()
    conn = make_connection(socket)
    set_mode(conn, GROUP, mode)  # type: ignore[arg-type]
    return conn, socket


async def test_each_subscriber_hears_presence_as_it_asked() -> None:
    """'diff' gets the diff, 'each' a presence frame per change, 'none' nothing."""
    feed = PresenceFeed(MemoryBus(), MemoryRegistry())
    await feed.watch(GROUP)
    (by_diff, d_socket), (by_each, e_socket), (silent, n_socket) = [
        await subscriber(mode) for mode in ("diff", "each", "none")
    ]
    feed.received(GROUP, [by_diff, by_each, silent], diff([ALICE], [BOB]))
    await d_socket.wait_for(1)
    await e_socket.wait_for(2)
    await asyncio.sleep(0.05)
    assert [json.loads(m["text"])["type"] for m in d_socket.frames] == ["presence_diff"]
    assert [json.loads(m["text"]) for m in e_socket.frames] == [
        {"type": "presence", "group_id": str(GROUP), "user_id": str(ALICE), "status": "online"},
        {"type": "presence", "group_id": str(GROUP), "user_id": str(BOB), "status": "offline"},
    ]
    assert n_socket.frames == []
    assert feed.online(GROUP) == [ALICE]


async def test_a_crowd_gets_no_frame_per_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EACH_LIMIT online, 'each' subscribers get no presence frames; 'diff' still does."""
    monkeypatch.setattr(feed_module, "EACH_LIMIT", 1)
    feed = PresenceFeed(MemoryBus(), MemoryRegistry())
    await feed.watch(GROUP)
    (by_diff, d_socket), (by_each, e_socket) = [await subscriber(m) for m in ("diff", "each")]
    feed.received(GROUP, [by_diff, by_each], diff([ALICE, BOB], []))
    await d_socket.wait_for(1)
    await asyncio.sleep(0.05)
    assert e_socket.frames == []


async def test_this_nodes_changes_go_out_as_one_diff_per_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two changes within the batch time: one diff on the group's channel."""
    monkeypatch.setattr(feed_module, "PRESENCE_BATCH_S", 0.01)
    bus = MemoryBus()
    heard: list[bytes] = []
    await bus.subscribe(group_channel(GROUP), lambda _channel, payload: heard.append(payload))
    feed = PresenceFeed(bus, MemoryRegistry())
    feed.changed(GROUP, ALICE, online=True)
    feed.changed(GROUP, BOB, online=True)
    await asyncio.sleep(0.1)
    [payload] = heard
    envelope = unpack(payload)
    assert envelope.kind is Kind.PRESENCE
    assert json.loads(envelope.frame)["online"] == [str(ALICE), str(BOB)]


async def test_a_malformed_diff_is_dropped() -> None:
    """Garbage on the bus changes nothing and reaches nobody."""
    feed = PresenceFeed(MemoryBus(), MemoryRegistry())
    await feed.watch(GROUP)
    conn, socket = await subscriber("diff")
    feed.received(GROUP, [conn], b"{not json")
    await asyncio.sleep(0.05)
    assert socket.frames == [] and feed.online(GROUP) == []
