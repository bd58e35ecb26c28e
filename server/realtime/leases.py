"""Which partitions of the persistence log each node drains: one lease per partition.

Every node beats a heartbeat (a sorted set of live nodes, scored by expiry) and aims to hold
its fair share, ``ceil(partitions / live nodes)``, of the partition leases (``SET NX PX``
keys in each partition's slot, :mod:`server.lease`, so a lease moves and fails over with
the stream it guards).
A node renews what it holds, gives back what exceeds its share (a node joined), and takes
free leases while under it (a node left, or died and its leases expired). So adding nodes
adds persistence throughput, and a dead node's partitions are drained again within a lease
time. The in-process twin grants every partition to its one node.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Protocol

from server.bus.partitions import Partitions
from server.lease import RedisLease
from server.redis_client import RedisClient

LEASE_MS = 3000
"""A lease (and a heartbeat) lasts this long unless renewed; nodes renew every third of it."""

_BEAT = """
-- Record this node alive until now + ttl, forget nodes past their expiry, count the living.
-- KEYS: the live-node set (node -> expiry ms). ARGV: node, ttl_ms. Returns the live count.
local nodes, node, ttl_ms = KEYS[1], ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', nodes, '-inf', now)
redis.call('ZADD', nodes, now + ttl_ms, node)
redis.call('PEXPIRE', nodes, ttl_ms * 10)
return redis.call('ZCARD', nodes)
"""


class Leases(Protocol):
    """This node's share of the partitions."""

    async def balance(self) -> frozenset[int]:
        """Renew, give back or take leases; return the partitions this node now holds."""
        ...

    async def release_all(self) -> None:
        """Give every lease back (the node is stopping and has drained)."""
        ...


class LocalLeases:
    """One process, every partition."""

    def __init__(self, count: int = 1) -> None:
        self._all = frozenset(range(count))

    async def balance(self) -> frozenset[int]:
        """Every partition."""
        return self._all

    async def release_all(self) -> None:
        """Nothing to give back."""


class RedisLeases:
    """Partition leases shared by every node through Redis."""

    def __init__(
        self, redis: RedisClient, partitions: Partitions, node: str, lease_ms: int = LEASE_MS
    ) -> None:
        self._redis = redis
        self._partitions = partitions
        self._node = node
        self._lease_ms = lease_ms
        self._leases = [
            RedisLease(redis, partitions.key(p, "persist:lease"), lease_ms / 1000, owner=node)
            for p in range(partitions.count)
        ]
        self._beat = redis.register_script(_BEAT)
        self._held: set[int] = set()
        start = zlib.crc32(node.encode()) % partitions.count
        self._order = [(start + i) % partitions.count for i in range(partitions.count)]
        """Where this node starts looking for free leases, so nodes spread out."""

    async def balance(self) -> frozenset[int]:
        """Beat, renew, then give back above the fair share or take free ones below it."""
        live: Any = await self._beat(keys=[self._nodes()], args=[self._node, self._lease_ms])
        share = math.ceil(self._partitions.count / max(1, int(live)))
        for partition in sorted(self._held):
            if not await self._leases[partition].hold():
                self._held.discard(partition)
        for partition in sorted(self._held)[share:]:
            await self._give_back(partition)
        for partition in self._order:
            if len(self._held) >= share:
                break
            if partition not in self._held and await self._leases[partition].hold():
                self._held.add(partition)
        return frozenset(self._held)

    async def release_all(self) -> None:
        """Give every lease back and leave the live set, so others take over at once."""
        for partition in sorted(self._held):
            await self._give_back(partition)
        await self._redis.zrem(self._nodes(), self._node)

    async def _give_back(self, partition: int) -> None:
        self._held.discard(partition)
        await self._leases[partition].release()

    def _nodes(self) -> str:
        return self._partitions.key(0, "persist:nodes")
