"""Recovery of a whole window over a real socket, as a client that fell far behind meets it.

A group gets 1,040 messages from 16 senders at their permitted rate; a watcher that missed
1,001 is told to reload, one that missed exactly the window (1,000) gets all of them, streamed
under flow control (never closed as a slow consumer while it reads), then ``subscribed``,
then whatever arrived live meanwhile, in seq order, without gaps or duplicates.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.factories.groups import public_group
from tests.factories.users import Account, account
from tests.fixtures.wsclient import JSON, MSGPACK, Socket, socket
from tests.integration.conftest import Realtime

pytestmark = pytest.mark.slow

SENDERS = 16
TOTAL = 1040
WINDOW = 1000
PACE_S = 0.11
"""Each sender stays under the default 10 messages/s (burst 30)."""


async def fill(rt: Realtime, group: str, senders: list[Account], total: int, tag: str) -> None:
    """``total`` messages split over ``senders``, each at a permitted pace; every one acked."""

    async def one_sender(index: int, user: Account) -> None:
        async with socket(rt.ws, user.token) as ws:
            for n in range(index, total, len(senders)):
                await ws.send_message(group, f"{tag}-{n}", f"{tag}-{n}")
                await asyncio.sleep(PACE_S)

    await asyncio.gather(*(one_sender(i, user) for i, user in enumerate(senders)))


async def resubscribe(ws: Socket, group: str, since_seq: int) -> tuple[list[int], dict[str, Any]]:
    """Resubscribe with ``since_seq``: the seqs replayed before ``subscribed``, and it."""
    await ws.send({"type": "subscribe", "group_id": group, "since_seq": since_seq})
    seqs: list[int] = []
    while True:
        frame = await ws.recv(timeout=20)
        if frame["type"] == "message":
            seqs.append(frame["seq"])
        elif frame["type"] == "subscribed":
            return seqs, frame
        else:
            assert frame["type"] in ("presence", "typing"), frame


@pytest.fixture
async def busy_group(rt: Realtime) -> tuple[str, list[Account], list[Account]]:
    """A public group holding 1,040 messages; its senders and two watchers (members)."""
    owner = await account(rt.http)
    senders = [await account(rt.http) for _ in range(SENDERS)]
    watchers = [await account(rt.http) for _ in range(2)]
    group = await public_group(rt.http, owner, *senders, *watchers)
    await fill(rt, group, senders, TOTAL, "fill")
    return group, senders, watchers


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_a_full_window_is_replayed_and_one_more_is_not(
    rt: Realtime, busy_group: tuple[str, list[Account], list[Account]], subprotocol: str
) -> None:
    """1,001 missed: recovered false, nothing replayed; 1,000 missed: all 1,000, then subscribed."""
    group, _, watchers = busy_group
    async with socket(rt.ws, watchers[0].token, subprotocol=subprotocol) as ws:
        too_far, told = await resubscribe(ws, group, TOTAL - WINDOW - 1)
        assert too_far == [] and told["recovered"] is False and told["last_seq"] == TOTAL
        replayed, subscribed = await resubscribe(ws, group, TOTAL - WINDOW)
        assert replayed == list(range(TOTAL - WINDOW + 1, TOTAL + 1))
        assert subscribed["recovered"] is True and subscribed["last_seq"] == TOTAL
        await ws.send({"type": "ping", "ref": "still-open"})
        assert (await ws.expect("pong"))["ref"] == "still-open"


async def test_live_messages_during_a_replay_follow_it_in_order(
    rt: Realtime, busy_group: tuple[str, list[Account], list[Account]]
) -> None:
    """Messages sent while 900 are replayed come after them: every seq once, in order."""
    group, senders, watchers = busy_group
    since = TOTAL - 900  # with up to 40 more arriving, still inside the window
    async with socket(rt.ws, watchers[1].token) as ws:
        live = asyncio.create_task(fill(rt, group, senders[:4], 40, "live"))
        await asyncio.sleep(0.05)  # the live senders are under way when the replay starts
        replayed, subscribed = await resubscribe(ws, group, since)
        await live
        assert subscribed["recovered"] is True and replayed[-1] == subscribed["last_seq"]
        after = [frame["seq"] for frame in await ws.collect("message", TOTAL + 40 - replayed[-1])]
        assert replayed + after == list(range(since + 1, TOTAL + 41))
