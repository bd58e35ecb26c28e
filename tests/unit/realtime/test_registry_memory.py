"""The in-process registry: what only the embedded single-node default does.

The behaviour shared with Redis is in ``tests/integration/test_registry_contract.py``.
"""

from __future__ import annotations

import uuid

import pytest

from server.realtime.registry import MemoryRegistry

USER_A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
USER_B = uuid.UUID("00000000-0000-4000-8000-00000000000b")
USER_C = uuid.UUID("00000000-0000-4000-8000-00000000000c")
GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


@pytest.fixture
def registry() -> MemoryRegistry:
    """A fresh in-process registry."""
    return MemoryRegistry()


async def test_nothing_ever_expires_in_process(registry: MemoryRegistry) -> None:
    """Without refresh, leases and presence stay: the process is the node."""
    assert await registry.acquire(USER_A, "s1", limit=1)
    assert await registry.join(GROUP, USER_A, "s1")
    await registry.refresh([], [])
    assert await registry.sweep(GROUP) == []
    assert not await registry.acquire(USER_A, "s2", limit=1)
    assert await registry.online(GROUP) == [USER_A]


async def test_release_of_an_unknown_lease_is_harmless(registry: MemoryRegistry) -> None:
    """Releasing a session that holds nothing (twice, or for an unknown user) does nothing."""
    await registry.release(USER_A, "never")
    assert await registry.acquire(USER_A, "s1", limit=1)
    await registry.release(USER_A, "s1")
    await registry.release(USER_A, "s1")
    assert await registry.acquire(USER_A, "s2", limit=1)


async def test_leave_of_an_unknown_socket_is_false(registry: MemoryRegistry) -> None:
    """Leaving a group the socket never joined reports no change."""
    assert not await registry.leave(GROUP, USER_A, "s1")
    await registry.join(GROUP, USER_A, "s1")
    assert not await registry.leave(GROUP, USER_A, "other")
    assert await registry.online(GROUP) == [USER_A]


async def test_online_of_an_unknown_group_is_empty(registry: MemoryRegistry) -> None:
    """A group nobody joined has nobody online."""
    assert await registry.online(uuid.uuid4()) == []


async def test_online_is_sorted_by_id(registry: MemoryRegistry) -> None:
    """The in-process list is stable: users ordered by their id."""
    for user, session in ((USER_C, "c"), (USER_A, "a"), (USER_B, "b")):
        await registry.join(GROUP, user, session)
    assert await registry.online(GROUP) == [USER_A, USER_B, USER_C]


async def test_limits_are_per_user(registry: MemoryRegistry) -> None:
    """One user at their limit does not take another user's slots."""
    assert await registry.acquire(USER_A, "a1", limit=1)
    assert not await registry.acquire(USER_A, "a2", limit=1)
    assert await registry.acquire(USER_B, "b1", limit=1)
