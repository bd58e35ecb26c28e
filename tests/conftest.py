"""Suite-wide fixtures: real PostgreSQL and Redis, a migrated database, a running node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.settings import Settings
from tests.fixtures.redis_cluster import (  # noqa: F401 - fixtures for the whole suite
    cluster_redis,
    own_redis_cluster,
    redis_cluster,
)
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import (
    REDIS_URL,
    ServiceMissing,
    check_services,
    drop_redis_prefix,
    fresh_database,
)
from tests.fixtures.settings import make_settings


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop the whole run, loudly, when PostgreSQL or Redis is missing."""
    try:
        asyncio.run(check_services())
    except ServiceMissing as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A migrated, throw-away PostgreSQL database for this run."""
    async with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key namespace of this run, removed afterwards."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    yield prefix
    await drop_redis_prefix(prefix)


@pytest.fixture
async def own_prefix() -> AsyncIterator[str]:
    """A Redis key namespace for one test that builds its own node, removed afterwards."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    yield prefix
    await drop_redis_prefix(prefix)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where uploaded avatars go during the run."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def settings(pg_url: str, redis_prefix: str, media_dir: Path) -> Settings:
    """The settings of the shared node: PostgreSQL and Redis."""
    return make_settings(pg_url, REDIS_URL, redis_prefix, media_dir)


@pytest.fixture(scope="session")
async def node(settings: Settings) -> AsyncIterator[RunningServer]:
    """A node on PostgreSQL and Redis, served by uvicorn on a real socket."""
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def client(node: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the shared node."""
    async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as http:
        yield http
