"""The Registry contract, run in process, on one real Redis and on a real Redis Cluster.

Redis-only scenarios follow: leases and presence of a node that stops refreshing expire, which
is how a dead node's connection slots are freed and its users announced offline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

import server.realtime.registry as registry_module
from scripts.redis_cluster import LocalCluster
from server.bus.partitions import Partitions
from server.realtime.registry import MemoryRegistry, RedisRegistry, Registry
from tests.fixtures.redis_cluster import cluster_client, drop_cluster_prefix
from tests.fixtures.services import REDIS_URL, drop_redis_prefix

LIMIT = 3


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A Redis client of this test, closed afterwards."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key namespace of this test only."""
    value = f"sbtest:{uuid.uuid4().hex[:12]}:"
    yield value
    await drop_redis_prefix(value)


async def _redis_registry(
    request: pytest.FixtureRequest, redis: Redis, prefix: str, ttl_s: float
) -> AsyncIterator[RedisRegistry]:
    """A Redis registry on one Redis or (``request.param == "cluster"``) the shared cluster."""
    if request.param != "cluster":
        yield RedisRegistry(redis, Partitions(prefix), ttl_s=ttl_s)
        return
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    client = await cluster_client(cluster).initialize()
    try:
        yield RedisRegistry(client, Partitions(prefix, 16, sharded=True), ttl_s=ttl_s)
    finally:
        await drop_cluster_prefix(client, prefix)
        await client.aclose()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def registry(
    request: pytest.FixtureRequest, redis: Redis, prefix: str
) -> AsyncIterator[Registry]:
    """Each implementation of the Registry contract (Redis ones on one Redis and a cluster)."""
    if request.param == "memory":
        yield MemoryRegistry()
        return
    async for made in _redis_registry(request, redis, prefix, 30):
        yield made


@pytest.fixture(params=["redis", "cluster"])
async def short_lived(
    request: pytest.FixtureRequest, redis: Redis, prefix: str
) -> AsyncIterator[RedisRegistry]:
    """A Redis registry whose leases last one second unless refreshed."""
    async for made in _redis_registry(request, redis, prefix, 1):
        yield made


def ids(count: int) -> list[uuid.UUID]:
    """Fresh ids (users or groups)."""
    return [uuid.uuid4() for _ in range(count)]


# --- connection leases ---------------------------------------------------------------------


async def test_acquire_up_to_limit_then_refuse(registry: Registry) -> None:
    """A user gets ``limit`` sockets; the next one is refused."""
    (user,) = ids(1)
    for n in range(LIMIT):
        assert await registry.acquire(user, f"s{n}", LIMIT)
    assert not await registry.acquire(user, "one-too-many", LIMIT)


async def test_reacquire_of_a_held_session_is_allowed(registry: Registry) -> None:
    """A session already holding a slot may acquire again even at the limit."""
    (user,) = ids(1)
    for n in range(LIMIT):
        assert await registry.acquire(user, f"s{n}", LIMIT)
    assert await registry.acquire(user, "s1", LIMIT)
    assert not await registry.acquire(user, "s-new", LIMIT)


async def test_release_frees_a_slot(registry: Registry) -> None:
    """Releasing one socket lets exactly one new socket in."""
    (user,) = ids(1)
    for n in range(LIMIT):
        await registry.acquire(user, f"s{n}", LIMIT)
    await registry.release(user, "s0")
    assert await registry.acquire(user, "s-new", LIMIT)
    assert not await registry.acquire(user, "s-newer", LIMIT)


async def test_limits_are_per_user(registry: Registry) -> None:
    """Another user's sockets do not count against a user's limit."""
    alice, bob = ids(2)
    for n in range(LIMIT):
        await registry.acquire(alice, f"a{n}", LIMIT)
    assert await registry.acquire(bob, "b0", LIMIT)


async def test_release_of_unknown_session_is_harmless(registry: Registry) -> None:
    """Releasing what is not held changes nothing."""
    (user,) = ids(1)
    await registry.release(user, "ghost")
    assert await registry.acquire(user, "s0", 1)
    await registry.release(user, "ghost")
    assert not await registry.acquire(user, "s1", 1)


# --- presence ------------------------------------------------------------------------------


async def test_join_is_true_only_for_a_users_first_socket(registry: Registry) -> None:
    """The first socket makes the user online; a second one does not announce again."""
    (group,) = ids(1)
    alice, bob = ids(2)
    assert await registry.join(group, alice, "a1")
    assert not await registry.join(group, alice, "a2")
    assert await registry.join(group, bob, "b1")


async def test_presence_is_per_group(registry: Registry) -> None:
    """Being online in one group says nothing about another."""
    first, second = ids(2)
    (alice,) = ids(1)
    assert await registry.join(first, alice, "a1")
    assert await registry.join(second, alice, "a1")
    assert await registry.online(second) == [alice]


async def test_leave_is_true_only_for_the_last_socket(registry: Registry) -> None:
    """The user goes offline when their last socket in the group leaves, not before."""
    (group,) = ids(1)
    (alice,) = ids(1)
    await registry.join(group, alice, "a1")
    await registry.join(group, alice, "a2")
    assert not await registry.leave(group, alice, "a1")
    assert await registry.online(group) == [alice]
    assert await registry.leave(group, alice, "a2")
    assert await registry.online(group) == []


async def test_leave_of_a_socket_that_never_joined_is_false(registry: Registry) -> None:
    """Leaving twice, or without joining, announces nothing."""
    (group,) = ids(1)
    (alice,) = ids(1)
    assert not await registry.leave(group, alice, "a1")
    await registry.join(group, alice, "a1")
    assert await registry.leave(group, alice, "a1")
    assert not await registry.leave(group, alice, "a1")


async def test_online_lists_distinct_users(registry: Registry) -> None:
    """Several sockets of one user appear once; every online user appears."""
    (group,) = ids(1)
    alice, bob, carol = ids(3)
    for user, session in ((alice, "a1"), (alice, "a2"), (bob, "b1"), (carol, "c1")):
        await registry.join(group, user, session)
    await registry.leave(group, carol, "c1")
    online = await registry.online(group)
    assert len(online) == 2
    assert set(online) == {alice, bob}


async def test_refresh_keeps_leases_and_presence(registry: Registry) -> None:
    """Refreshing live sockets keeps their slots taken and their users online."""
    (group,) = ids(1)
    (alice,) = ids(1)
    assert await registry.acquire(alice, "a1", 1)
    await registry.join(group, alice, "a1")
    await registry.refresh([(alice, "a1")], [(group, alice, "a1")])
    await registry.refresh([], [])
    assert not await registry.acquire(alice, "a2", 1)
    assert await registry.online(group) == [alice]
    assert await registry.sweep(group) == []


# --- Redis only: what a dead node leaves behind expires --------------------------------------


async def test_unrefreshed_lease_expires_and_frees_the_slot(short_lived: RedisRegistry) -> None:
    """A dead node stops refreshing: after the TTL its socket's slot can be taken again."""
    (user,) = ids(1)
    assert await short_lived.acquire(user, "dead-node-socket", 1)
    assert not await short_lived.acquire(user, "new-socket", 1)
    await asyncio.sleep(1.2)
    assert await short_lived.acquire(user, "new-socket", 1)


async def test_refresh_keeps_a_lease_past_its_ttl(short_lived: RedisRegistry) -> None:
    """A live node refreshing its sockets keeps slots and presence well beyond the TTL."""
    (group,) = ids(1)
    (user,) = ids(1)
    assert await short_lived.acquire(user, "live", 1)
    await short_lived.join(group, user, "live")
    for _ in range(4):
        await asyncio.sleep(0.35)
        await short_lived.refresh([(user, "live")], [(group, user, "live")])
    assert not await short_lived.acquire(user, "other", 1)
    assert await short_lived.online(group) == [user]
    assert await short_lived.sweep(group) == []


async def test_refresh_in_batches_keeps_every_socket(
    short_lived: RedisRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five sockets refreshed two at a time: all of them outlive the TTL."""
    monkeypatch.setattr(registry_module, "REFRESH_BATCH", 2)
    (group,) = ids(1)
    users = ids(5)
    for user in users:
        assert await short_lived.acquire(user, f"s-{user}", 1)
        await short_lived.join(group, user, f"s-{user}")
    for _ in range(4):
        await asyncio.sleep(0.35)
        await short_lived.refresh(
            [(user, f"s-{user}") for user in users],
            [(group, user, f"s-{user}") for user in users[:3]],
        )
    assert all([not await short_lived.acquire(user, "other", 1) for user in users])
    assert sorted(await short_lived.online(group)) == sorted(users[:3])


async def test_sweep_reports_an_expired_user_exactly_once(short_lived: RedisRegistry) -> None:
    """Presence of a dead node's socket expires; sweep announces the user offline once."""
    (group,) = ids(1)
    gone, staying = ids(2)
    await short_lived.join(group, gone, "dead")
    await asyncio.sleep(0.7)  # presence lasts half the one-second TTL
    await short_lived.join(group, staying, "fresh")
    assert await short_lived.online(group) == [staying]
    assert await short_lived.sweep(group) == [gone]
    assert await short_lived.sweep(group) == []
    assert await short_lived.online(group) == [staying]


async def test_sweep_ignores_a_user_with_another_live_socket(short_lived: RedisRegistry) -> None:
    """One expired socket of a user who still has a live one is not an offline event."""
    (group,) = ids(1)
    (user,) = ids(1)
    await short_lived.join(group, user, "dead")
    await asyncio.sleep(0.3)
    assert not await short_lived.join(group, user, "live")
    await asyncio.sleep(0.35)  # "dead" has expired, "live" has not
    assert await short_lived.sweep(group) == []
    assert await short_lived.online(group) == [user]


async def test_join_after_expiry_announces_online_again(short_lived: RedisRegistry) -> None:
    """Once a user's only entry expired, their next socket makes them online again."""
    (group,) = ids(1)
    (user,) = ids(1)
    assert await short_lived.join(group, user, "s1")
    await asyncio.sleep(0.7)
    assert await short_lived.join(group, user, "s2")


# --- typing -------------------------------------------------------------------------------


async def test_typing_is_claimed_once_per_interval_per_user_and_group(registry: Registry) -> None:
    """One claim per interval; another user or group is its own; a lapsed claim is renewed."""
    user, other_user, group, other_group = ids(4)
    assert await registry.claim_typing(group, user, 0.3)
    assert not await registry.claim_typing(group, user, 0.3)
    assert await registry.claim_typing(group, other_user, 0.3)
    assert await registry.claim_typing(other_group, user, 0.3)
    await asyncio.sleep(0.4)
    assert await registry.claim_typing(group, user, 0.3)
