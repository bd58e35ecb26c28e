"""Partition leases of the persisters, on one real Redis and on a real Redis Cluster.

Nodes share the partitions fairly, a joining node gets its share, a dead node's partitions
are taken over once its leases expire, and a stopping node hands its partitions over at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from scripts.redis_cluster import LocalCluster
from server.bus.partitions import Partitions
from server.realtime.leases import LocalLeases, RedisLeases
from server.redis_client import RedisClient
from tests.fixtures.redis_cluster import cluster_client, drop_cluster_prefix
from tests.fixtures.services import REDIS_URL, drop_redis_prefix

LEASE_MS = 600
COUNT = 16

Nodes = Callable[[str], RedisLeases]


@pytest.fixture(params=["redis", "cluster"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    """Make the lease book of a named node, all on one Redis or all on the shared cluster."""
    prefix = f"sbtest:{uuid.uuid4().hex[:12]}:"
    client: RedisClient
    if request.param == "redis":
        client = Redis.from_url(REDIS_URL)
    else:
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        client = await cluster_client(cluster).initialize()
    partitions = Partitions(prefix, COUNT, sharded=request.param == "cluster")
    yield lambda name: RedisLeases(client, partitions, name, lease_ms=LEASE_MS)
    if isinstance(client, Redis):
        await drop_redis_prefix(prefix)
    else:
        await drop_cluster_prefix(client, prefix)
    await client.aclose()


async def settle(*books: RedisLeases, rounds: int = 3) -> list[frozenset[int]]:
    """Balance every node a few rounds, as their supervisors would; the last holdings."""
    held: list[frozenset[int]] = []
    for _ in range(rounds):
        held = [await book.balance() for book in books]
    return held


def assert_shared(held: list[frozenset[int]]) -> None:
    """Every partition is held by exactly one node, and nobody holds over its fair share."""
    share = -(-COUNT // len(held))
    assert sorted(p for h in held for p in h) == list(range(COUNT))
    assert all(len(h) <= share for h in held), [len(h) for h in held]


async def test_one_node_holds_every_partition(nodes: Nodes) -> None:
    """Alone, a node drains every partition."""
    assert await nodes("a").balance() == frozenset(range(COUNT))


async def test_two_nodes_split_the_partitions(nodes: Nodes) -> None:
    """A second node joins: the first gives half back, the second takes it."""
    first, second = nodes("a"), nodes("b")
    assert await first.balance() == frozenset(range(COUNT))
    held = await settle(first, second)
    assert_shared(held)
    assert [len(h) for h in held] == [8, 8]


async def test_a_third_node_gets_its_share(nodes: Nodes) -> None:
    """Three nodes: none over the ceiling of 16/3 (6), so the last has at least 4."""
    books = [nodes(name) for name in ("a", "b", "c")]
    held = await settle(*books, rounds=4)
    assert_shared(held)
    assert min(len(h) for h in held) >= COUNT - 2 * 6


async def test_a_dead_nodes_partitions_are_taken_over_after_a_lease(nodes: Nodes) -> None:
    """A node that stops renewing loses its partitions once its leases expire."""
    alive, dead = nodes("alive"), nodes("dead")
    held = await settle(alive, dead)
    assert_shared(held)
    orphans = held[1]
    assert orphans
    assert not orphans & await alive.balance()  # still leased to the silent node
    await asyncio.sleep(LEASE_MS / 1000 + 0.2)
    assert await alive.balance() == frozenset(range(COUNT))


async def test_a_stopping_node_hands_over_at_once(nodes: Nodes) -> None:
    """release_all gives the leases back and leaves the live set: no wait for an expiry."""
    staying, leaving = nodes("staying"), nodes("leaving")
    await settle(staying, leaving)
    await leaving.release_all()
    assert await staying.balance() == frozenset(range(COUNT))


async def test_a_lease_taken_by_another_is_not_renewed(nodes: Nodes) -> None:
    """A node paused past its lease finds its partitions taken, and stops claiming them."""
    slow, quick = nodes("slow"), nodes("quick")
    assert await slow.balance() == frozenset(range(COUNT))
    await asyncio.sleep(LEASE_MS / 1000 + 0.2)  # slow's leases and heartbeat expire
    assert await quick.balance() == frozenset(range(COUNT))
    held = await settle(slow, quick)
    assert_shared(held)


async def test_in_process_leases_are_every_partition() -> None:
    """The embedded node drains its one queue."""
    local = LocalLeases(1)
    assert await local.balance() == frozenset({0})
    await local.release_all()
    assert await local.balance() == frozenset({0})
