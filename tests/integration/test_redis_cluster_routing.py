"""The product's cluster client on the shared local cluster: stream reads, dropped nodes."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ResponseError

from scripts.redis_cluster import LocalCluster
from server.redis_client import create_redis, release_orphan


async def _getkeys_calls(client: RedisCluster) -> int:
    """``COMMAND GETKEYS`` calls served so far, over every node of the cluster."""
    total = 0
    for node in client.get_nodes():
        stats = await client.info("commandstats", target_nodes=node)
        total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


async def test_stream_reads_are_routed_without_asking_a_node(redis_cluster: LocalCluster) -> None:
    """XREADGROUP finds its slot from its own keys: no COMMAND GETKEYS round trip."""
    client = create_redis(redis_cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    stream = f"sbtest:{uuid.uuid4().hex[:8]}:{{routing}}stream"
    try:
        await client.xgroup_create(stream, "readers", id="0", mkstream=True)
        await client.xadd(stream, {"n": "1"})
        before = await _getkeys_calls(client)
        read = await client.xreadgroup("readers", "reader-1", {stream: ">"}, count=10)
        assert [entry[1] for entry in read[0][1]] == [{b"n": b"1"}]
        assert await _getkeys_calls(client) == before
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_a_node_dropped_from_the_map_is_disconnected(redis_cluster: LocalCluster) -> None:
    """A node object the map no longer holds loses its connections; the map's own keep them."""
    client = create_redis(redis_cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    try:
        await client.ping()
        held = client.get_node_from_key("routing")
        assert held is not None
        dropped = ClusterNode(held.host, held.port)  # what a map refresh leaves behind
        assert await client.ping(target_nodes=dropped)
        await client.ping(target_nodes=held)
        await release_orphan(client, dropped)
        await release_orphan(client, held)
        assert not any(c.is_connected for c in dropped._connections)
        assert any(c.is_connected for c in held._connections)
    finally:
        await client.aclose()


async def test_scripts_go_to_their_first_keys_slot(redis_cluster: LocalCluster) -> None:
    """A script's keys in one slot run there; keys in two slots meet Redis's CROSSSLOT."""
    client = create_redis(redis_cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    tag = uuid.uuid4().hex[:8]
    script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"
    try:
        assert await client.eval(script, 2, f"{{{tag}}}a", f"{{{tag}}}b", "x") == 1
        with pytest.raises(ResponseError, match=r"hash to the same slot"):
            await client.eval(script, 2, f"{{{tag}}}a", f"{{{tag}x}}b", "x")
    finally:
        await client.delete(f"{{{tag}}}a", f"{{{tag}}}b")
        await client.aclose()
