"""Readiness follows PostgreSQL and Redis going away and coming back, without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from server.store.db import create_database
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings


@pytest.fixture
async def proxies(pg_url: str) -> AsyncIterator[tuple[CuttableProxy, CuttableProxy]]:
    """Cuttable proxies in front of the test PostgreSQL and Redis."""
    pg, redis = urlsplit(pg_url), urlsplit(REDIS_URL)
    pg_proxy = CuttableProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    redis_proxy = CuttableProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
    await pg_proxy.start()
    await redis_proxy.start()
    yield pg_proxy, redis_proxy
    await pg_proxy.stop()
    await redis_proxy.stop()


@pytest.fixture
async def proxied_node(
    pg_url: str, proxies: tuple[CuttableProxy, CuttableProxy], tmp_path: Path, own_prefix: str
) -> AsyncIterator[RunningServer]:
    """A node reaching its services only through the proxies."""
    pg_proxy, redis_proxy = proxies
    pg = urlsplit(pg_url)
    settings = make_settings(
        f"postgresql://{pg.username}@127.0.0.1:{pg_proxy.port}{pg.path}",
        f"redis://127.0.0.1:{redis_proxy.port}/0",
        own_prefix,
        tmp_path,
    )
    async with serve(settings) as running:
        yield running


async def _ready(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await http.get("/health/ready")


async def _wait_ready(base_url: str, status: int) -> httpx.Response:
    for _ in range(100):
        response = await _ready(base_url)
        if response.status_code == status:
            return response
        await asyncio.sleep(0.1)
    raise AssertionError(f"readiness never became {status}: {response.text}")


async def test_database_outage_is_named_and_recovers(
    proxied_node: RunningServer, proxies: tuple[CuttableProxy, CuttableProxy]
) -> None:
    """PostgreSQL unreachable: 503 naming the database; back: 200, same process."""
    pg_proxy, _ = proxies
    assert (await _ready(proxied_node.base_url)).status_code == 200
    pg_proxy.cut()
    response = await _wait_ready(proxied_node.base_url, 503)
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["details"]["unavailable"] == ["database"]
    pg_proxy.restore()
    await _wait_ready(proxied_node.base_url, 200)


async def test_redis_outage_is_named_and_recovers(
    proxied_node: RunningServer, proxies: tuple[CuttableProxy, CuttableProxy]
) -> None:
    """Redis unreachable: 503 naming redis; back: 200, same process."""
    _, redis_proxy = proxies
    redis_proxy.cut()
    response = await _wait_ready(proxied_node.base_url, 503)
    assert response.json()["error"]["details"]["unavailable"] == ["redis"]
    redis_proxy.restore()
    await _wait_ready(proxied_node.base_url, 200)


async def test_rest_call_during_redis_outage_is_503(
    proxied_node: RunningServer, proxies: tuple[CuttableProxy, CuttableProxy]
) -> None:
    """A rate-limited endpoint answers SERVICE_UNAVAILABLE, not 500, while Redis is down."""
    _, redis_proxy = proxies
    redis_proxy.cut()
    try:
        async with httpx.AsyncClient(base_url=proxied_node.base_url, timeout=20) as http:
            response = await http.post(
                "/api/v1/auth/login", json={"email": "a@b.co", "password": "x"}
            )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        redis_proxy.restore()


async def test_the_pool_never_opens_more_than_db_pool_max(pg_url: str) -> None:
    """DB_POOL_MIN above DB_POOL_MAX: the node warms DB_POOL_MAX connections, no more.

    Operators size max_connections by DB_POOL_MAX; the pool's size was the larger of the two.
    """
    database = create_database(pg_url, pool_min=30, pool_max=3)
    try:
        await database.warm()
        assert database.engine.pool.size() == 3  # type: ignore[attr-defined]
        assert database.engine.pool.checkedin() == 3  # type: ignore[attr-defined]
    finally:
        await database.dispose()
