"""Two nodes agree on what the contract keeps per group: its members, and who is typing.

A member's socket need not subscribe to send, so a node may cache a group's members without
receiving the group's channel: a membership change must reach every node's cache. And the
typing throttle (one per 2 s per user and group) holds for a user typing on two nodes. Two
nodes on one Redis (and on the Redis Cluster).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.factories.groups import GROUPS, create_group, public_group
from tests.factories.users import account
from tests.fixtures.redis_cluster import LocalCluster
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings
from tests.fixtures.wsclient import Socket, socket

NOTICE_S = 3.0
"""How long a change may take to reach the other node (a roster is otherwise kept 60 s)."""


@asynccontextmanager
async def _two_nodes(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path, prefix: str
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        settings = make_settings(pg_url, cluster.url, prefix, tmp_path, redis_cluster=True)
    else:
        settings = make_settings(pg_url, REDIS_URL, prefix, tmp_path)
    async with serve(settings) as a, serve(settings) as b:
        yield a, b


@pytest.fixture(params=["redis", "cluster"])
async def nodes(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path, own_prefix: str
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Nodes A and B sharing PostgreSQL and Redis (or the Redis Cluster)."""
    async with _two_nodes(request, pg_url, tmp_path, own_prefix) as pair:
        yield pair


async def _answer(ws: Socket, frame: dict[str, object]) -> dict[str, object]:
    ref = uuid.uuid4().hex
    await ws.send({**frame, "ref": ref})
    while True:
        reply = await ws.recv()
        if reply.get("ref") == ref:
            return reply


async def _refused_within(ws: Socket, frame: dict[str, object], seconds: float) -> bool:
    """True once ``frame`` (a fresh client_msg_id each time) is answered NOT_FOUND."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        reply = await _answer(ws, {**frame, "client_msg_id": uuid.uuid4().hex})
        if reply["type"] == "error" and reply["code"] == "NOT_FOUND":
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("change", ["kick", "delete"])
async def test_an_ended_membership_ends_on_the_other_node(
    nodes: tuple[RunningServer, RunningServer], change: str
) -> None:
    """Kicked (or the group deleted) on A: B refuses the member at once, not in 60 s.

    The member's socket on B never subscribed; its sends and a subscription are refused.
    """
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        owner, member = await account(http), await account(http)
        group = await public_group(http, owner, member)
        send = {"type": "send", "group_id": group, "body": "hello"}
        async with socket(f"{b.ws_url}/api/v1/ws", member.token) as ws:
            first = await _answer(ws, {**send, "client_msg_id": "before"})
            assert first["type"] == "ack"  # node B now holds the group's members
            path = (
                f"{GROUPS}/{group}/members/{member.id}" if change == "kick" else f"{GROUPS}/{group}"
            )
            assert (await http.delete(path, headers=owner.headers)).status_code == 204
            assert await _refused_within(ws, send, NOTICE_S)
            subscribed = await _answer(ws, {"type": "subscribe", "group_id": group, "since_seq": 0})
            assert (subscribed["type"], subscribed.get("code")) == ("error", "NOT_FOUND")


async def test_who_joins_on_one_node_may_subscribe_on_the_other(
    nodes: tuple[RunningServer, RunningServer],
) -> None:
    """Joined on A, a member subscribes on B at once, though B had the group cached."""
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        owner, newcomer = await account(http), await account(http)
        group = (await create_group(http, owner, visibility="public"))["id"]
        async with socket(f"{b.ws_url}/api/v1/ws", owner.token) as watcher:
            await watcher.subscribe(group)  # node B now holds the group's members
            joined = await http.post(f"{GROUPS}/{group}/join", headers=newcomer.headers)
            assert joined.status_code == 200
            async with socket(f"{b.ws_url}/api/v1/ws", newcomer.token) as ws:
                deadline = asyncio.get_running_loop().time() + NOTICE_S
                reply = await _answer(ws, {"type": "subscribe", "group_id": group})
                while reply["type"] == "error" and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.1)
                    reply = await _answer(ws, {"type": "subscribe", "group_id": group})
                assert reply["type"] == "subscribed", reply


async def test_a_subscriber_is_in_its_own_online_list_on_either_node(
    nodes: tuple[RunningServer, RunningServer],
) -> None:
    """Subscribed on A, then at once on B: B's subscribed lists the user (contract section 4).

    B knew the group already (another member there) and had not yet heard A's presence batch
    (up to 250 ms), so its list missed the user, and the user's own presence frames are not
    sent to its sockets: it never learnt it was online.
    """
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        user, other = await account(http), await account(http)
        group = await public_group(http, other, user)
        async with (
            socket(f"{b.ws_url}/api/v1/ws", other.token) as watcher,
            socket(f"{a.ws_url}/api/v1/ws", user.token) as on_a,
            socket(f"{b.ws_url}/api/v1/ws", user.token) as on_b,
        ):
            await watcher.subscribe(group)  # node B watches the group's presence
            first = await on_a.subscribe(group)
            second = await on_b.subscribe(group)
            assert user.id in first["online"] and user.id in second["online"], second
            assert second["online"].count(user.id) == 1


async def test_typing_from_two_nodes_is_announced_once_per_interval(
    nodes: tuple[RunningServer, RunningServer],
) -> None:
    """A user typing on sockets on both nodes reaches a watcher once per 2 s, not per node."""
    a, b = nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        typist, watcher = await account(http), await account(http)
        group = await public_group(http, typist, watcher)
        async with (
            socket(f"{a.ws_url}/api/v1/ws", typist.token) as on_a,
            socket(f"{b.ws_url}/api/v1/ws", typist.token) as on_b,
            socket(f"{a.ws_url}/api/v1/ws", watcher.token) as seen,
        ):
            await seen.subscribe(group)
            for ws in (on_a, on_b, on_a, on_b, on_a, on_b):
                await ws.send({"type": "typing", "group_id": group})
                await asyncio.sleep(0.1)
            assert (await seen.expect("typing"))["user_id"] == typist.id
            assert await seen.silent("typing", 1.0)
