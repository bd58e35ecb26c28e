"""Several real node processes sharing PostgreSQL and Redis: ordering, caps, crashes, drains."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.factories.groups import public_group
from tests.factories.users import account
from tests.fixtures.processes import NodeProcess, cluster_env
from tests.fixtures.wsclient import socket

pytestmark = pytest.mark.slow
LEASE_TTL_S = 6


@pytest.fixture
def two_nodes(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Nodes A and B of one cluster."""
    env = cluster_env(pg_url, own_prefix, tmp_path, WS_LEASE_TTL_S=str(LEASE_TTL_S))
    a = NodeProcess(env).start(tmp_path / "a.log")
    b = NodeProcess(env).start(tmp_path / "b.log")
    yield a, b
    for node in (a, b):
        node.stop(signal.SIGKILL)


async def test_subscribers_on_both_nodes_see_one_gapless_order(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    """Three clients over two nodes receive identical, gapless seq order from two senders."""
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        users = [await account(http) for _ in range(3)]
        group = await public_group(http, users[0], *users[1:])
        async with (
            socket(a.ws_url, users[0].token) as s0,
            socket(b.ws_url, users[1].token) as s1,
            socket(b.ws_url, users[2].token) as s2,
        ):
            for ws in (s0, s1, s2):
                await ws.subscribe(group)

            async def send_many(ws: object, prefix: str) -> None:
                for i in range(25):
                    await ws.send_message(group, f"{prefix}{i}", f"{prefix}{i}")  # type: ignore[attr-defined]

            await asyncio.gather(send_many(s0, "a"), send_many(s1, "b"))
            seen = [[m["seq"] for m in await ws.collect("message", 50)] for ws in (s0, s1, s2)]
    assert seen[0] == seen[1] == seen[2] == list(range(1, 51))


async def test_connection_cap_counts_sockets_on_every_node(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    """Three sockets on node B: a fourth on node A is refused with 4009."""
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        user = await account(http)
    async with (
        socket(b.ws_url, user.token),
        socket(b.ws_url, user.token),
        socket(b.ws_url, user.token),
    ):
        async with socket(a.ws_url) as fourth:
            await fourth.send({"type": "auth", "token": user.token})
            assert await fourth.closed_with() == 4009


async def test_sigkill_loses_no_acked_message(two_nodes: tuple[NodeProcess, NodeProcess]) -> None:
    """A is SIGKILLed mid-stream: every acked message reaches B's subscriber and history, once."""
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=b.base_url, timeout=10) as http:
        sender, watcher = await account(http), await account(http)
        group = await public_group(http, sender, watcher)
        acked: list[int] = []
        async with socket(b.ws_url, watcher.token) as w:
            await w.subscribe(group)
            async with socket(a.ws_url, sender.token) as s:

                async def send_loop() -> None:
                    for i in range(10_000):
                        await s.send(
                            {
                                "type": "send",
                                "group_id": group,
                                "body": f"n{i}",
                                "client_msg_id": f"k{i}",
                            }
                        )
                        acked.append((await s.expect("ack", timeout=5))["seq"])
                        await asyncio.sleep(0.01)

                loop = asyncio.create_task(send_loop())
                await asyncio.sleep(1.0)
                assert a.process is not None
                os.kill(a.process.pid, signal.SIGKILL)
                await asyncio.gather(loop, return_exceptions=True)
            assert len(acked) > 10
            received = [m["seq"] for m in await w.collect("message", len(acked))]
            assert received[: len(acked)] == acked
        for _ in range(100):
            history = await http.get(
                f"/api/v1/study-groups/{group}/messages",
                headers=watcher.headers,
                params={"sort": "seq", "page_size": 100, "after_seq": 0},
            )
            stored = [m["seq"] for m in history.json()["data"]]
            total = history.json()["pagination"]["total"]
            if set(acked) <= set(stored) or total >= len(acked):
                break
            await asyncio.sleep(0.2)
        pages = []
        page = 1
        while True:
            response = await http.get(
                f"/api/v1/study-groups/{group}/messages",
                headers=watcher.headers,
                params={"sort": "seq", "page_size": 100, "page": page},
            )
            pages.extend(m["seq"] for m in response.json()["data"])
            if page >= response.json()["pagination"]["total_pages"]:
                break
            page += 1
    assert set(acked) <= set(pages)
    assert len(pages) == len(set(pages))


async def test_dead_nodes_slots_and_presence_expire(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    """A SIGKILLed node's sockets stop counting and its users go offline within the lease."""
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=b.base_url, timeout=10) as http:
        user, watcher = await account(http), await account(http)
        group = await public_group(http, user, watcher)
    async with socket(b.ws_url, watcher.token) as w, AsyncExitStack() as stack:
        await w.subscribe(group)
        doomed = [await stack.enter_async_context(socket(a.ws_url, user.token)) for _ in range(3)]
        await doomed[0].subscribe(group)
        await w.expect("presence", user_id=user.id, status="online")
        assert a.process is not None
        os.kill(a.process.pid, signal.SIGKILL)
        killed_at = asyncio.get_running_loop().time()
        offline = await w.expect("presence", timeout=20, user_id=user.id)
        assert offline["status"] == "offline"
        assert asyncio.get_running_loop().time() - killed_at <= LEASE_TTL_S + 6
        while True:  # the slots come back once the dead node's leases expire
            try:
                async with socket(b.ws_url, user.token) as again:
                    assert again.ready["user_id"] == user.id
                    break
            except ConnectionClosed:
                assert asyncio.get_running_loop().time() - killed_at <= LEASE_TTL_S + 1
                await asyncio.sleep(0.5)


async def test_a_drained_nodes_users_go_offline_at_once_elsewhere(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    """SIGTERM on node A: a watcher on node B sees A's user go offline within seconds.

    The drain took the user's registry entry and dropped the batched offline change, so no
    node ever said offline (a crash did, after the lease).
    """
    a, b = two_nodes
    async with httpx.AsyncClient(base_url=b.base_url, timeout=10) as http:
        user, watcher = await account(http), await account(http)
        group = await public_group(http, user, watcher)
    async with socket(b.ws_url, watcher.token) as w, socket(a.ws_url, user.token) as leaving:
        await w.subscribe(group)
        await leaving.subscribe(group)
        await w.expect("presence", user_id=user.id, status="online")
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)
        stopped_at = asyncio.get_running_loop().time()
        offline = await w.expect("presence", timeout=LEASE_TTL_S + 10, user_id=user.id)
        assert offline["status"] == "offline"
        assert asyncio.get_running_loop().time() - stopped_at < LEASE_TTL_S / 2


async def test_sigterm_drains_with_going_away_codes(
    two_nodes: tuple[NodeProcess, NodeProcess],
) -> None:
    """SIGTERM closes sockets with 1001 or 1012 and the node exits in bounded time."""
    a, _ = two_nodes
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        user = await account(http)
        group = await public_group(http, user)
    async with socket(a.ws_url, user.token) as ws:
        ack = await ws.send_message(group, "before shutdown", "s1")
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)
        assert await ws.closed_with() in (1001, 1012)
    # Bounded: the drain waits up to SHUTDOWN_GRACE_S (10 s), then uvicorn up to 15 s more.
    assert a.process.wait(10 + 15 + 5) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert "Application shutdown complete." in a.log()
    assert ack["seq"] == 1
