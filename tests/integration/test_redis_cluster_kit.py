"""The local Redis Cluster kit itself: start, routing, failover after SIGKILL, slot migration."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio.cluster import RedisCluster

from scripts.redis_cluster import (
    ClusterError,
    LocalCluster,
    main,
    parse_cluster_nodes,
    slot_of,
    split_slots,
)
from tests.fixtures.redis_cluster import cluster_client


def test_starts_three_primaries_each_with_an_in_sync_replica(redis_cluster: LocalCluster) -> None:
    status = redis_cluster.status()
    primaries = [s for s in status if s.role == "primary"]
    replicas = [s for s in status if s.role == "replica"]
    assert [s.slots for s in primaries] == [((0, 5460),), ((5461, 10922),), ((10923, 16383),)]
    assert sorted(s.primary_port or 0 for s in replicas) == sorted(s.port for s in primaries)
    assert {s.state for s in status} == {"ok"}
    for primary in primaries:
        node = redis_cluster.node(primary.port)
        info = node.info("replication")
        assert info["connected_slaves"] == 1
        config = node.command("CONFIG", "GET", "append*")
        assert (config["appendonly"], config["appendfsync"]) == ("yes", "always")
    assert redis_cluster.timings["start_s"] < 20


def test_a_second_cluster_on_busy_ports_fails_loudly(redis_cluster: LocalCluster) -> None:
    other = LocalCluster(redis_cluster.folder / "unused", redis_cluster.base_port)
    with pytest.raises(ClusterError, match=f"port\\(s\\) {redis_cluster.base_port}.* in use"):
        other.start()
    assert all(node.alive() for node in redis_cluster.nodes)


async def test_keys_set_through_redis_py_land_on_the_owning_primary(
    redis_cluster: LocalCluster, cluster_redis: RedisCluster
) -> None:
    keys = [f"kit:{i}" for i in range(60)]
    for key in keys:
        await cluster_redis.set(key, key.upper())
    owners = set()
    for key in keys:
        assert await cluster_redis.get(key) == key.upper().encode()
        port = redis_cluster.owner_of(key)
        assert getattr(cluster_redis.get_node_from_key(key), "port", None) == port
        assert redis_cluster.node(port).command("GET", key) == key.upper()
        owners.add(port)
    assert len(owners) == 3  # 60 keys spread over every primary
    await cluster_redis.delete(*keys)


def test_slot_helpers_match_redis() -> None:
    assert split_slots(3) == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert slot_of("foo") == 12182
    assert slot_of("{user1000}.following") == slot_of("{user1000}.followers")
    views = parse_cluster_nodes(
        "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave "
        "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n"
        "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 "
        "1426238316232 2 connected 5461-10922 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265a2f4f]\n"
    )
    assert views[0].primary_id == "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
    assert views[1].slots == ((5461, 10922),) and views[1].owns(6000) and views[1].is_primary


def test_command_line_status_and_owner(
    redis_cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--folder", str(redis_cluster.folder), "--base-port", str(redis_cluster.base_port)]
    assert main([*args, "status"]) == 0
    assert main([*args, "owner", "foo"]) == 0
    out = capsys.readouterr().out
    assert out.count("cluster_state:ok") == 6
    assert f"slot 12182 on 127.0.0.1:{redis_cluster.owner_of('foo')}" in out
    assert main([*args, "kill", "1"]) == 1
    assert "is not a node of this cluster" in capsys.readouterr().err


@pytest.mark.slow
async def test_sigkill_of_a_primary_promotes_its_replica(own_redis_cluster: LocalCluster) -> None:
    cluster = own_redis_cluster
    client = cluster_client(cluster)
    try:
        keys = [f"{{fo}}:{i}" for i in range(100)]
        await client.mset_nonatomic({key: b"v" for key in keys})
        await asyncio.to_thread(cluster.wait_ready)  # replicated before the crash
        victim = cluster.owner_of(keys[0])
        replica = cluster.replicas_of(victim)
        cluster.kill(victim)
        promoted = await asyncio.to_thread(cluster.wait_failover, victim)
        assert [promoted] == replica
        assert cluster.timings["failover_s"] < 15
        assert await _read_with_retries(client, keys) == [b"v"] * len(keys)
        assert cluster.owner_of(keys[0]) == promoted
        await asyncio.to_thread(cluster.restart, victim)
        assert cluster.replicas_of(promoted) == [victim]
        with pytest.raises(ClusterError, match="not killed as a primary"):
            cluster.wait_failover(promoted)
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_slot_migration_moves_keys_in_batches(own_redis_cluster: LocalCluster) -> None:
    cluster = own_redis_cluster
    client = cluster_client(cluster)
    try:
        keys = [f"{{mig}}:{i}" for i in range(250)]
        await client.mset_nonatomic({key: key for key in keys})
        slot = slot_of(keys[0])
        source = cluster.owner_of_slot(slot)
        target = next(p for p in cluster.ports[:3] if p != source)
        moved = await asyncio.to_thread(cluster.migrate_slot, slot, target, 100)
        assert moved == 250
        assert cluster.owner_of_slot(slot) == target
        assert cluster.node(target).command("CLUSTER", "COUNTKEYSINSLOT", slot) == 250
        assert cluster.node(source).command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert await client.mget_nonatomic(keys) == [key.encode() for key in keys]
        assert getattr(client.get_node_from_key(keys[0]), "port", None) == target  # MOVED
        with pytest.raises(ClusterError, match="cannot migrate"):
            cluster.begin_migration(slot, target)
    finally:
        await client.aclose()


async def _read_with_retries(client: RedisCluster, keys: list[str]) -> list[bytes | None]:
    deadline = time.monotonic() + 10
    while True:
        try:
            return list(await client.mget_nonatomic(keys))
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
