"""Daily active users across nodes (Redis), and on the metrics endpoint."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from server.activity import DailyActive
from tests.factories.users import account
from tests.fixtures.services import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_two_nodes_count_distinct_users_together(redis: Redis, own_prefix: str) -> None:
    """Each node counts its users once; the count is the union of both nodes'."""
    first, second = DailyActive(redis, own_prefix), DailyActive(redis, own_prefix)
    shared, only_first, only_second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user in (shared, only_first, shared):
        await first.seen(user)
    for user in (shared, only_second):
        await second.seen(user)
    assert await first.count() == 3
    assert await second.count() == 3


async def test_a_redis_failure_never_fails_the_caller(own_prefix: str) -> None:
    """Redis unreachable: seeing a user is a warning, and the user is tried again later."""
    broken = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    try:
        active = DailyActive(broken, own_prefix)
        user = uuid.uuid4()
        await active.seen(user)
        await active.seen(user)  # not remembered as counted: tried again
    finally:
        await broken.aclose()


async def test_the_metric_counts_authenticated_callers(client: httpx.AsyncClient) -> None:
    """After an authenticated call, the gauge reports at least that user."""
    user = await account(client)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    text = (await client.get("/health/metrics")).text
    match = re.search(r"^studybuddy_daily_active_users (\S+)$", text, re.MULTILINE)
    assert match is not None and float(match.group(1)) >= 1
