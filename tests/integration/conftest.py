"""Fixtures for the real-time contract suite: the same tests on Redis, a cluster, in process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.redis_cluster import LocalCluster
from server.store.db import Database, create_database
from tests.fixtures.browser import PHASE_REPORTS
from tests.fixtures.pg_cluster import StreamingPair
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL, migrate
from tests.fixtures.settings import make_settings


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture can tell a failed test (traces)."""
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


@dataclass
class Realtime:
    """A node, an HTTP client of it, and its socket URL."""

    node: RunningServer
    http: httpx.AsyncClient
    kind: str

    @property
    def ws(self) -> str:
        """The socket endpoint."""
        return f"{self.node.ws_url}/api/v1/ws"


@pytest.fixture(scope="session")
async def embedded_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """A node on the embedded default: SQLite and in-process twins."""
    folder = tmp_path_factory.mktemp("embedded-rt")
    url = f"sqlite:///{folder / 'rt.db'}"
    await asyncio.to_thread(migrate, url)
    async with serve(make_settings(url, None, "sb:", folder / "media")) as running:
        yield running


@pytest.fixture(scope="session")
async def asgi_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """An embedded node under uvicorn's stock socket protocol: the plain ASGI send path."""
    folder = tmp_path_factory.mktemp("asgi-rt")
    url = f"sqlite:///{folder / 'rt.db'}"
    await asyncio.to_thread(migrate, url)
    async with serve(
        make_settings(url, None, "sb:", folder / "media"), ws="websockets-sansio"
    ) as running:
        yield running


@pytest.fixture
async def owned_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    """A Redis this test may kill and restart (persisting with appendfsync always)."""
    server = await OwnRedis(tmp_path).astart()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
async def cluster_node(
    pg_url: str, redis_cluster: LocalCluster, media_dir: Path
) -> AsyncIterator[RunningServer]:
    """A node on PostgreSQL and the shared Redis Cluster (16 partitions, sharded pub/sub)."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    settings = make_settings(pg_url, redis_cluster.url, prefix, media_dir, redis_cluster=True)
    async with serve(settings) as running:
        yield running


@pytest.fixture(params=["redis", "cluster", "memory", "asgi"])
async def rt(
    request: pytest.FixtureRequest,
    node: RunningServer,
    cluster_node: RunningServer,
    embedded_node: RunningServer,
    asgi_node: RunningServer,
) -> AsyncIterator[Realtime]:
    """The contract suite's subject, four times.

    The Redis-backed node, one on a Redis Cluster, the embedded one, and the embedded one
    under uvicorn's stock socket protocol (frames through plain ASGI ``send`` instead of
    pre-framed writes).
    """
    nodes = {"redis": node, "cluster": cluster_node, "memory": embedded_node, "asgi": asgi_node}
    chosen = nodes[request.param]
    async with httpx.AsyncClient(base_url=chosen.base_url, timeout=10) as http:
        yield Realtime(chosen, http, request.param)


@pytest.fixture(scope="session")
async def pg_streaming() -> AsyncIterator[StreamingPair]:
    """A PostgreSQL primary of our own and a streaming replica, with a migrated database.

    Both on free loopback ports in a temp directory; never the system cluster.
    """
    pair = await asyncio.to_thread(StreamingPair.create)
    try:
        await asyncio.to_thread(migrate, pair.primary_url)
        await pair.wait_caught_up()
        yield pair
    finally:
        await asyncio.to_thread(pair.destroy)


@pytest.fixture
async def pg_replica(pg_streaming: StreamingPair) -> StreamingPair:
    """The session's pair, its replica running and caught up (an earlier test may stop it)."""
    await pg_streaming.astart_replica()
    await pg_streaming.wait_caught_up()
    return pg_streaming


__all__ = ["REDIS_URL", "Realtime"]


@pytest.fixture(params=["postgresql", "sqlite"])
async def dialect_db(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    """The run's PostgreSQL database, or a migrated SQLite file (store tests on both)."""
    url = pg_url
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        await asyncio.to_thread(migrate, url)
    database = create_database(url, pool_min=1, pool_max=2)
    yield database
    await database.dispose()
