"""Redis or PostgreSQL going away under traffic: say so, ack nothing unsafe, recover alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.factories.groups import public_group
from tests.factories.users import Account, account
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.settings import make_settings
from tests.fixtures.wsclient import Socket, socket

pytestmark = pytest.mark.slow


async def _send(ws: Socket, group: str, key: str) -> dict[str, object]:
    """Send one message and return the ack or the error frame."""
    await ws.send(
        {"type": "send", "group_id": group, "body": key, "client_msg_id": key, "ref": key}
    )
    while True:
        frame = await ws.recv(15)
        if frame.get("ref") == key and frame["type"] in ("ack", "error"):
            return frame
        ws.pending.append(frame)


async def _history(http: httpx.AsyncClient, user: Account, group: str) -> list[int]:
    response = await http.get(
        f"/api/v1/study-groups/{group}/messages",
        headers=user.headers,
        params={"sort": "seq", "page_size": 100},
    )
    return [m["seq"] for m in response.json()["data"]]


async def test_redis_restart_during_traffic(
    pg_url: str, owned_redis: OwnRedis, tmp_path: Path
) -> None:
    """Errors while Redis is down, nothing acked is lost, delivery resumes without a restart."""
    settings = make_settings(pg_url, owned_redis.url, f"sbtest:{uuid.uuid4().hex[:8]}:", tmp_path)
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        sender, watcher = await account(http), await account(http)
        group = await public_group(http, sender, watcher)
        url = f"{node.ws_url}/api/v1/ws"
        async with socket(url, sender.token) as s, socket(url, watcher.token) as w:
            await w.subscribe(group)
            acked = [(await _send(s, group, f"before{i}"))["seq"] for i in range(5)]
            owned_redis.kill()
            down = await _send(s, group, "during")
            assert down["type"] == "error" and down["code"] == "SERVICE_UNAVAILABLE"
            await owned_redis.astart()
            for i in range(100):
                frame = await _send(s, group, f"after{i}")
                if frame["type"] == "ack":
                    acked.append(int(frame["seq"]))  # type: ignore[call-overload]
                    if len(acked) >= 10:
                        break
                else:
                    await asyncio.sleep(0.2)
            assert len(acked) == 10 and acked == sorted(acked)
            received = [m["seq"] for m in await w.collect("message", 10, timeout=20)]
            assert received == acked
        for _ in range(100):
            if set(acked) <= set(await _history(http, watcher, group)):
                break
            await asyncio.sleep(0.2)
        assert set(acked) <= set(await _history(http, watcher, group))


async def test_a_node_started_while_redis_is_down_serves_once_it_is_back(
    pg_url: str, owned_redis: OwnRedis, tmp_path: Path
) -> None:
    """Redis coming up after the node: the node starts, says redis is down, then serves.

    It used to exit during start-up (the job queue's start-up reached Redis), so a
    deployment whose Redis started second crash-looped instead of reporting not ready.
    """
    owned_redis.kill()
    settings = make_settings(pg_url, owned_redis.url, f"sbtest:{uuid.uuid4().hex[:8]}:", tmp_path)
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        down = await http.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["error"]["details"]["unavailable"] == ["redis"]
        await owned_redis.astart()
        for _ in range(100):
            if (await http.get("/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await http.get("/health/ready")).status_code == 200
        sender, watcher = await account(http), await account(http)
        group = await public_group(http, sender, watcher)
        url = f"{node.ws_url}/api/v1/ws"
        async with socket(url, sender.token) as s, socket(url, watcher.token) as w:
            await w.subscribe(group)
            ack = await _send(s, group, "after-start")
            assert ack["type"] == "ack" and ack["seq"] == 1
            assert [m["body"] for m in await w.collect("message", 1, timeout=20)] == ["after-start"]
        for _ in range(100):
            if await _history(http, watcher, group) == [1]:
                break
            await asyncio.sleep(0.2)
        assert await _history(http, watcher, group) == [1]


@pytest.fixture
async def pg_proxy(pg_url: str) -> AsyncIterator[CuttableProxy]:
    """A cuttable path to the test PostgreSQL."""
    parts = urlsplit(pg_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_node(
    pg_url: str, pg_proxy: CuttableProxy, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    """A node whose database is behind the proxy."""
    from tests.fixtures.services import REDIS_URL

    parts = urlsplit(pg_url)
    url = f"postgresql://{parts.username}@127.0.0.1:{pg_proxy.port}{parts.path}"
    async with serve(
        make_settings(url, REDIS_URL, f"{redis_prefix}pg{uuid.uuid4().hex[:6]}:", tmp_path)
    ) as node:
        yield node


async def test_postgres_outage_keeps_acking_and_history_catches_up(
    proxied_node: RunningServer, pg_proxy: CuttableProxy
) -> None:
    """PostgreSQL away: socket sends are still acked (Redis holds them); history catches up."""
    async with httpx.AsyncClient(base_url=proxied_node.base_url, timeout=20) as http:
        sender, watcher = await account(http), await account(http)
        group = await public_group(http, sender, watcher)
        url = f"{proxied_node.ws_url}/api/v1/ws"
        async with socket(url, sender.token) as s, socket(url, watcher.token) as w:
            await w.subscribe(group)
            await s.subscribe(group)
            pg_proxy.cut()
            acked = []
            for i in range(10):
                frame = await _send(s, group, f"m{i}")
                assert frame["type"] == "ack", frame
                acked.append(frame["seq"])
            assert [m["seq"] for m in await w.collect("message", 10)] == acked
            ready = await http.get("/health/ready")
            assert (
                ready.status_code == 503
                and "database" in ready.json()["error"]["details"]["unavailable"]
            )
            pg_proxy.restore()
        for _ in range(150):
            if (await http.get("/health/ready")).status_code == 200 and set(acked) <= set(
                await _history(http, watcher, group)
            ):
                break
            await asyncio.sleep(0.2)
        assert set(acked) <= set(await _history(http, watcher, group))
