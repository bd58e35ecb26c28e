"""A socket's slot (its lease against the user's cap) is given back even when Redis is in flux.

A lease that could not be given back would count against the user's 3 sockets until it
expires (30 s): a client reconnecting through a Redis failover was refused 4009. The hub
tries again in the background. The registry here fails its first releases as Redis does
while a primary fails over (``ConnectionError``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

import server.hub.hub as hub_module
from server.bus.memory import MemoryBus
from server.hub.hub import Hub
from server.realtime.registry import MemoryRegistry
from tests.fixtures.fake_asgi import USER, FakeSocket, make_connection


class FailingOver(MemoryRegistry):
    """An in-process registry whose first ``failures`` releases fail like Redis failing over."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    async def release(self, user_id: uuid.UUID, session_id: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RedisConnectionError("the primary is failing over")
        await super().release(user_id, session_id)


async def _closed_socket_of(registry: FailingOver) -> Hub:
    """A hub that admitted one socket of USER and has just let it go."""
    hub = Hub(MemoryBus(), registry, cast(Any, None), cast(Any, None), max_sockets=3, window=10)
    conn = make_connection(FakeSocket())
    assert await hub.admit(conn)
    await hub.release(conn)
    return hub


async def test_a_slot_that_could_not_be_given_back_is_given_back_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two failed releases, then the third in the background: the slot is free again."""
    monkeypatch.setattr(hub_module, "RELEASE_RETRIES_S", (0.01, 0.01, 0.01))
    registry = FailingOver(failures=2)
    hub = await _closed_socket_of(registry)
    assert not await registry.acquire(USER, "s-2", 1)  # still held: the release failed
    for _ in range(100):
        if registry.attempts == 3:
            break
        await asyncio.sleep(0.01)
    assert registry.attempts == 3
    assert await registry.acquire(USER, "s-2", 1)
    await hub.stop()


async def test_a_slot_never_given_back_is_left_to_expire_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stays away through every retry: the hub gives up, says so, and the lease expires."""
    monkeypatch.setattr(hub_module, "RELEASE_RETRIES_S", (0.01, 0.01))
    registry = FailingOver(failures=10)
    hub = await _closed_socket_of(registry)
    for _ in range(100):
        if "was not given back" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert registry.attempts == 3
    assert "a socket's slot was not given back; it expires with its lease" in caplog.text
    assert not await registry.acquire(USER, "s-2", 1)
    await hub.stop()
