"""Read replicas on a real streaming replica: who reads where, read-your-writes, outages.

Each node here runs on the ``pg_streaming`` pair: a PostgreSQL primary and a hot standby of
our own on loopback ports. Pausing the replica's WAL replay makes it stale on purpose, so
what a read returns shows which server answered it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server.store.db import replica_name
from tests.factories.groups import GROUPS, create_group, post_message
from tests.factories.users import Account, account
from tests.fixtures.pg_cluster import StreamingPair
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings

pytestmark = pytest.mark.slow
NodeFactory = Callable[..., Any]


@pytest.fixture
def replica_node(pg_replica: StreamingPair, own_prefix: str, tmp_path: Path) -> Callable[..., Any]:
    """Start a node on the pair (replica listed), with overridable settings."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[RunningServer]:
        values: dict[str, Any] = {
            "database_replica_urls": [pg_replica.replica_url],
            "database_replica_max_lag_s": 60.0,
            "database_replica_check_s": 0.1,
            **overrides,
        }
        settings = make_settings(pg_replica.primary_url, REDIS_URL, own_prefix, tmp_path, **values)
        async with serve(settings) as running:
            yield running

    return start


@asynccontextmanager
async def replay_paused(pair: StreamingPair) -> AsyncIterator[None]:
    """The replica receives WAL but applies none of it until the block ends."""
    await pair.wait_caught_up()
    await _sql(pair.replica.url(pair.database), "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        if pair.replica.running:
            await _sql(pair.replica.url(pair.database), "SELECT pg_wal_replay_resume()")


async def _sql(url: str, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _names(http: httpx.AsyncClient, who: Account, subject: str) -> list[str]:
    """Names of the groups with ``subject`` that ``who`` lists (a lag-tolerant read)."""
    response = await http.get(GROUPS, headers=who.headers, params={"filter[subject]": subject})
    assert response.status_code == 200, response.text
    return [group["name"] for group in response.json()["data"]]


async def _metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    """A sample of ``/health/metrics`` with exactly ``labels`` (0 when absent)."""
    text = (await http.get("/health/metrics")).text
    for found in re.finditer(rf"^{name}(?:{{(.*)}})? (\S+)$", text, re.MULTILINE):
        if dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or "")) == labels:
            return float(found.group(2))
    return 0.0


async def _reads(http: httpx.AsyncClient, target: str, reason: str) -> float:
    return await _metric(http, "studybuddy_db_read_sessions_total", reason=reason, target=target)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _replica_report(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.get("/health/ready")
    assert response.status_code == 200, response.text  # a replica never fails readiness
    data: dict[str, Any] = response.json()["data"]
    report: dict[str, Any] = data["replicas"][name]
    report["degraded"] = data["degraded"]
    return report


async def test_lag_tolerant_reads_are_served_by_the_replica(
    pg_replica: StreamingPair, replica_node: NodeFactory
) -> None:
    """A change made behind the app's back shows in listings only once the replica replays it.

    Current reads (one group by id) come from the primary and see it at once.
    """
    subject = f"rr-{uuid.uuid4().hex[:10]}"
    async with replica_node() as node, httpx.AsyncClient(base_url=node.base_url) as http:
        alice, bob = await account(http), await account(http)
        group = await create_group(http, alice, subject=subject, name="Before the change")
        await pg_replica.wait_caught_up()
        served = await _reads(http, "replica", "ok")
        async with replay_paused(pg_replica):
            await _sql(
                pg_replica.primary_url,
                "UPDATE study_groups SET name = 'Changed on the primary' WHERE id = $1",
                uuid.UUID(group["id"]),
            )
            assert await _names(http, bob, subject) == ["Before the change"]
            one = await http.get(f"{GROUPS}/{group['id']}", headers=bob.headers)
            assert one.json()["data"]["name"] == "Changed on the primary"
            assert await _reads(http, "replica", "ok") > served
        await pg_replica.wait_caught_up()
        assert await _names(http, bob, subject) == ["Changed on the primary"]


async def test_a_user_reads_their_own_writes_while_the_replica_is_stale(
    pg_replica: StreamingPair, replica_node: NodeFactory
) -> None:
    """Alice new group and message are in her listings at once; Bob sees them after replay."""
    subject = f"ryw-{uuid.uuid4().hex[:10]}"
    async with replica_node() as node, httpx.AsyncClient(base_url=node.base_url) as http:
        alice, bob = await account(http), await account(http)
        behind = await _reads(http, "primary", "behind")
        async with replay_paused(pg_replica):
            group = await create_group(http, alice, subject=subject, name="Alice new group")
            assert await _names(http, alice, subject) == ["Alice new group"]
            assert await _names(http, bob, subject) == []  # Bob reads the stale replica
            message = await post_message(http, alice, group["id"], "written just now")
            history = await http.get(f"{GROUPS}/{group['id']}/messages", headers=alice.headers)
            assert [m["id"] for m in history.json()["data"]] == [message["id"]]
            assert await _reads(http, "primary", "behind") >= behind + 2
        await pg_replica.wait_caught_up()
        assert await _names(http, bob, subject) == ["Alice new group"]


async def test_own_writes_are_read_from_a_replica_that_has_replayed_them(
    pg_replica: StreamingPair, replica_node: NodeFactory
) -> None:
    """Replay running: the read waits (briefly) for the user's write position, then reads it."""
    subject = f"ryw2-{uuid.uuid4().hex[:10]}"
    async with (
        replica_node(database_replica_wait_s=2.0) as node,
        httpx.AsyncClient(base_url=node.base_url) as http,
    ):
        alice = await account(http)
        served = await _reads(http, "replica", "ok")
        for n in range(5):
            await create_group(http, alice, subject=subject, name=f"Group {n}")
            assert len(await _names(http, alice, subject)) == n + 1
        assert await _reads(http, "replica", "ok") >= served + 5


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_replica_lost_mid_test_falls_back_to_the_primary(
    pg_replica: StreamingPair, replica_node: NodeFactory, how: str
) -> None:
    """Reads go on from the primary; readiness stays 200 and names the replica down."""
    name = replica_name(pg_replica.replica_url)
    subject = f"down-{uuid.uuid4().hex[:10]}"
    async with replica_node() as node, httpx.AsyncClient(base_url=node.base_url) as http:
        alice, bob = await account(http), await account(http)
        await create_group(http, alice, subject=subject, name="Still listed")
        await pg_replica.wait_caught_up()
        assert await _names(http, bob, subject) == ["Still listed"]
        stop = pg_replica.stop_replica if how == "stop" else pg_replica.kill_replica
        await asyncio.to_thread(stop)

        assert await _names(http, bob, subject) == ["Still listed"]
        await create_group(http, alice, subject=subject, name="Written meanwhile")
        assert sorted(await _names(http, bob, subject)) == ["Still listed", "Written meanwhile"]

        async def reported_down() -> bool:
            return (await _replica_report(http, name))["state"] == "down"

        await _until(reported_down)
        assert (await _replica_report(http, name))["degraded"] == [name]
        assert await _metric(http, "studybuddy_db_replica_up", replica=name) == 0

        await pg_replica.astart_replica()

        async def reported_ok() -> bool:
            return (await _replica_report(http, name))["state"] == "ok"

        await _until(reported_ok)
        assert await _metric(http, "studybuddy_db_replica_up", replica=name) == 1
        served = await _reads(http, "replica", "ok")
        assert len(await _names(http, bob, subject)) == 2
        assert await _reads(http, "replica", "ok") == served + 1


async def test_a_lagging_replica_is_reported_and_left_out(
    pg_replica: StreamingPair, replica_node: NodeFactory
) -> None:
    """Replay paused past the allowed lag: readiness says ``lagging``, reads use the primary."""
    name = replica_name(pg_replica.replica_url)
    subject = f"lag-{uuid.uuid4().hex[:10]}"
    async with (
        replica_node(database_replica_max_lag_s=0.5) as node,
        httpx.AsyncClient(base_url=node.base_url) as http,
    ):
        alice, bob = await account(http), await account(http)
        group = await create_group(http, alice, subject=subject, name="Before")
        async with replay_paused(pg_replica):
            await _sql(
                pg_replica.primary_url,
                "UPDATE study_groups SET name = 'After' WHERE id = $1",
                uuid.UUID(group["id"]),
            )

            async def reported_lagging() -> bool:
                return (await _replica_report(http, name))["state"] == "lagging"

            await _until(reported_lagging)
            report = await _replica_report(http, name)
            assert report["lag_seconds"] > 0.5
            assert report["lag_bytes"] > 0
            assert report["degraded"] == [name]
            assert await _metric(http, "studybuddy_db_replica_lag_seconds", replica=name) > 0.5
            assert await _metric(http, "studybuddy_db_replica_lag_bytes", replica=name) > 0
            assert await _names(http, bob, subject) == ["After"]  # from the primary

        async def caught_up() -> bool:
            report = await _replica_report(http, name)
            return report["state"] == "ok" and report["lag_bytes"] == 0

        await _until(caught_up)
        assert await _metric(http, "studybuddy_db_replica_lag_seconds", replica=name) == 0
