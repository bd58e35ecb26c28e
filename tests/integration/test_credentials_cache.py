"""Credentials are cached per node; a password change reaches every node's cache at once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

import server.services.auth as auth_module
from server.realtime.envelope import CREDENTIALS_CHANNEL
from tests.factories.users import account
from tests.fixtures.server import serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings


async def test_a_password_change_on_one_node_revokes_old_tokens_on_the_other(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Node B has the user's credentials cached; a change on node A makes B refuse at once."""
    settings = make_settings(pg_url, REDIS_URL, own_prefix, tmp_path)
    async with (
        serve(settings) as a,
        serve(settings) as b,
        httpx.AsyncClient(base_url=a.base_url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=10) as on_b,
    ):
        alice = await account(on_a)
        assert (await on_b.get("/api/v1/users/me", headers=alice.headers)).status_code == 200
        body = {"current_password": alice.password, "new_password": "a-brand-new-passphrase-78"}
        changed = await on_a.put("/api/v1/users/me/password", headers=alice.headers, json=body)
        assert changed.status_code == 200
        for _ in range(50):  # the notice crosses the bus in milliseconds
            if (await on_b.get("/api/v1/users/me", headers=alice.headers)).status_code == 401:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("node B still accepts a token from before the change")


async def test_cached_credentials_expire_and_the_cache_stays_bounded(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no time to live and room for one user, every call reads again, and still works."""
    monkeypatch.setattr(auth_module, "CREDENTIALS_TTL_S", 0.0)
    monkeypatch.setattr(auth_module, "MAX_CACHED_CREDENTIALS", 1)
    alice, bob = await account(client), await account(client)
    for user in (alice, bob, alice, bob):
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200


async def test_a_malformed_credentials_notice_is_ignored(
    client: httpx.AsyncClient, redis_prefix: str
) -> None:
    """Garbage on the shared node's credentials channel changes nothing: tokens keep working."""
    alice = await account(client)
    async with Redis.from_url(REDIS_URL) as redis:
        channel = redis_prefix + CREDENTIALS_CHANNEL
        assert await redis.publish(channel, b"not-a-uuid") == 1
        await redis.publish(channel, str(uuid.uuid4()).encode())
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200
