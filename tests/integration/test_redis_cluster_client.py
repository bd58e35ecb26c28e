"""What redis-py 8.1's asyncio ``RedisCluster`` and Redis 7.0 do on a cluster (issue 12).

These tests document behaviour the product relies on (docs/architecture/redis-cluster-notes.md
cites them by name): sharded pub/sub, scripts, MOVED/ASK/TRYAGAIN, WAIT, partition hash tags and
streams, each on the local cluster kit. A test that fails after an upgrade of redis-py or
Redis means a fact in the notes changed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import (
    ClusterCrossSlotError,
    ClusterError,
    MovedError,
    RedisClusterException,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from scripts.redis_cluster import LocalCluster, free_base_port, slot_of, split_slots
from tests.fixtures.redis_cluster import cluster_client

T = TypeVar("T")


async def _eventually(call: Callable[[], Awaitable[T]], timeout: float = 15) -> T:
    """Retry ``call`` until it succeeds (the first calls after a failover fail)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except (RedisConnectionError, ClusterError, MovedError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _owner(client: RedisCluster, key: str) -> ClusterNode:
    node = client.get_node_from_key(key)
    assert node is not None
    return node


def _port(node: ClusterNode) -> int:
    return int(node.port)


async def _confirmations(pubsub: PubSub, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        message = await pubsub.get_message(timeout=2)
        assert message is not None, f"only {len(messages)} confirmations"
        messages.append(message)
    return messages


class ShardSubscriber:
    """The per-partition subscriber the product needs: one plain connection to the owner.

    redis-py's ``ClusterPubSub`` does not fit (see the tests below), so this reads one
    connection per partition and, on a dropped connection or an unrequested ``sunsubscribe``,
    refreshes the cluster map and subscribes again at the slot's current primary.
    """

    def __init__(self, cluster: RedisCluster, channels: list[str]) -> None:
        self.cluster = cluster
        self.channels = channels
        self.port = 0
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None

    async def connect(self) -> int:
        """Subscribe every channel with one SSUBSCRIBE at the owner; its port."""
        node = _owner(self.cluster, self.channels[0])
        self._client = Redis(host=node.host, port=_port(node), socket_connect_timeout=1)
        self._pubsub = self._client.pubsub()
        await self._pubsub.ssubscribe(*self.channels)
        kinds = {m["type"] for m in await _confirmations(self._pubsub, len(self.channels))}
        assert kinds == {"ssubscribe"}
        self.port = _port(node)
        return self.port

    async def reconnect(self) -> int:
        """Refresh the slot map, then subscribe at the new owner."""
        await self.close()
        await self.cluster.nodes_manager.initialize()
        return await self.connect()

    async def read(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The next push (message or server-side ``sunsubscribe``), or None."""
        assert self._pubsub is not None
        message: dict[str, Any] | None = await self._pubsub.get_message(timeout=timeout)
        return message

    async def close(self) -> None:
        """Drop the connection."""
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._client is not None:
            await self._client.aclose()
        self._pubsub = self._client = None


async def test_one_seed_url_discovers_the_whole_cluster(redis_cluster: LocalCluster) -> None:
    client = await RedisCluster.from_url(redis_cluster.url).initialize()  # REDIS_URL, one node
    try:
        assert sorted(_port(n) for n in client.get_primaries()) == redis_cluster.ports[:3]
        assert sorted(_port(n) for n in client.get_replicas()) == redis_cluster.ports[3:]
    finally:
        await client.aclose()


# -- (a) sharded pub/sub ----------------------------------------------------------------------


async def test_channels_of_one_slot_share_one_sharded_subscription_connection(
    redis_cluster: LocalCluster, cluster_redis: RedisCluster
) -> None:
    tag = uuid.uuid4().hex[:8]
    one, two = f"{{{tag}}}g:1", f"{{{tag}}}g:2"
    owner = redis_cluster.owner_of(one)
    # ClusterPubSub: one connection per node, channels of a slot together on it
    pubsub = cluster_redis.pubsub()
    await pubsub.ssubscribe(one, two)
    assert [(await pubsub.get_sharded_message(timeout=2) or {}).get("data") for _ in "12"] == [1, 2]
    assert list(pubsub.node_pubsub_mapping) == [f"127.0.0.1:{owner}"]
    clients = redis_cluster.node(owner).command("CLIENT", "LIST")
    assert any("ssub=2" in line and "resp=3" in line for line in clients.splitlines())
    # SPUBLISH is routed by the channel's slot to its primary; it returns the receivers there
    assert await cluster_redis.spublish(one, b"hello") == 1
    message = await pubsub.get_sharded_message(timeout=2)
    assert message is not None and (message["type"], message["data"]) == ("smessage", b"hello")
    # a plain PubSub at the owner: one SSUBSCRIBE with both channels, two confirmations
    plain = Redis(port=owner)
    subscriber = plain.pubsub()
    await subscriber.ssubscribe(one, two)
    assert [m["channel"] for m in await _confirmations(subscriber, 2)] == [
        one.encode(),
        two.encode(),
    ]
    # a replica of the owner serves shard subscriptions too, and gets the primary's messages
    replica = Redis(port=redis_cluster.replicas_of(owner)[0]).pubsub()
    await replica.ssubscribe(one)
    await _confirmations(replica, 1)
    assert await cluster_redis.spublish(one, b"again") == 2  # pubsub + subscriber on the primary
    for reader in (subscriber, replica):
        assert (await reader.get_message(timeout=2) or {}).get("data") == b"again"
    for closing in (pubsub, subscriber, replica):
        await closing.aclose()  # type: ignore[no-untyped-call]
    await plain.aclose()


async def test_sharded_subscribe_errors_cross_slot_and_wrong_node(
    redis_cluster: LocalCluster,
) -> None:
    tag = uuid.uuid4().hex[:8]
    channel = f"{{{tag}}}g"
    other = next(f"x{i}" for i in range(100) if slot_of(f"x{i}") != slot_of(channel))
    owner = redis_cluster.owner_of(channel)
    plain = Redis(port=owner)
    cross = plain.pubsub()
    await cross.ssubscribe(channel, other)
    with pytest.raises(ClusterCrossSlotError):
        await cross.get_message(timeout=2)
    wrong = Redis(port=next(p for p in redis_cluster.ports[:3] if p != owner))
    misplaced = wrong.pubsub()
    await misplaced.ssubscribe(channel)
    with pytest.raises(MovedError):
        await misplaced.get_message(timeout=2)
    for closing in (cross, misplaced):
        await closing.aclose()  # type: ignore[no-untyped-call]
    await plain.aclose()
    await wrong.aclose()


async def test_cluster_pubsub_polls_nodes_in_turn_so_a_quiet_node_throttles_delivery(
    redis_cluster: LocalCluster, cluster_redis: RedisCluster
) -> None:
    busy = f"{{{uuid.uuid4().hex[:8]}}}busy"
    quiet = next(
        f"{{q{i}}}quiet"
        for i in range(1000)
        if redis_cluster.owner_of(f"{{q{i}}}quiet") != redis_cluster.owner_of(busy)
    )
    pubsub = cluster_redis.pubsub()
    await pubsub.ssubscribe(busy, quiet)
    for _ in range(2):
        await pubsub.get_sharded_message(timeout=2)
    for i in range(6):
        await cluster_redis.spublish(busy, str(i))
    began, got = time.monotonic(), list[bytes]()
    while len(got) < 6:
        message = await pubsub.get_sharded_message(timeout=0.25)
        if message is not None:
            got.append(message["data"])
    elapsed = time.monotonic() - began
    assert got == [str(i).encode() for i in range(6)]
    assert elapsed > 1.0  # each read waits the full timeout on the quiet node first
    await pubsub.aclose()


async def test_spublish_from_a_script_and_in_a_cluster_pipeline(
    redis_cluster: LocalCluster, cluster_redis: RedisCluster
) -> None:
    tag = uuid.uuid4().hex[:8]
    channel = f"{{{tag}}}g"
    subscriber = ShardSubscriber(cluster_redis, [channel])
    await subscriber.connect()
    script = cluster_redis.register_script(
        "redis.call('INCR', KEYS[1]); return redis.call('SPUBLISH', ARGV[1], ARGV[2])"
    )
    assert await script(keys=[f"{{{tag}}}seq"], args=[channel, "from-lua"]) == 1
    assert (await subscriber.read() or {}).get("data") == b"from-lua"
    # a ClusterPipeline may SPUBLISH (grouped per node); pipe.publish() is blocked
    pipe = cluster_redis.pipeline(transaction=False)
    pipe.spublish(channel, "piped")
    pipe.spublish(f"{{{tag}x}}other", "elsewhere")
    assert await pipe.execute() == [1, 0]
    assert (await subscriber.read() or {}).get("data") == b"piped"
    with pytest.raises(RedisClusterException, match="publish is blocked"):
        cluster_redis.pipeline().publish(channel, "x")
    await subscriber.close()
    await cluster_redis.delete(f"{{{tag}}}seq")


@pytest.mark.slow
async def test_sharded_subscriptions_after_a_primary_fails_over(
    own_redis_cluster: LocalCluster,
) -> None:
    cluster = own_redis_cluster
    publisher, idle = cluster_client(cluster), cluster_client(cluster)
    channel, stream = "{p7}g:1", "{p7}persist"
    try:
        await asyncio.gather(publisher.initialize(), idle.initialize())
        shared = publisher.pubsub()  # the publisher's own client: heals with its traffic
        separate = idle.pubsub()  # a client that sends nothing else: never heals
        for pubsub in (shared, separate):
            await pubsub.ssubscribe(channel)
            assert (await pubsub.get_sharded_message(timeout=2) or {}).get("type") == "ssubscribe"
        subscriber = ShardSubscriber(publisher, [channel])
        victim = await subscriber.connect()
        # state the failover must keep: a script cached on the primary only, a stream's PEL
        script = publisher.register_script("return redis.call('INCR', KEYS[1])")
        assert await script(keys=["{p7}n"]) == 1
        await publisher.xgroup_create(stream, "persisters", id="0", mkstream=True)
        for i in range(4):
            await publisher.xadd(stream, {"n": i})
        await publisher.xreadgroup("persisters", "a", {stream: ">"}, count=3)
        replica = cluster.replicas_of(victim)[0]
        assert cluster.node(replica).command("SCRIPT", "EXISTS", script.sha) == [0]
        await asyncio.to_thread(cluster.wait_ready)  # replicated before the crash

        cluster.kill(victim)
        with pytest.raises(RedisConnectionError):
            await separate.get_sharded_message(timeout=1)
        promoted = await asyncio.to_thread(cluster.wait_failover, victim)
        assert promoted == replica
        assert cluster.timings["failover_s"] < 15

        # the publisher's first command after the failover refreshes its map; its own
        # ClusterPubSub then re-subscribes at the new primary in the background
        receivers = await _eventually(lambda: publisher.spublish(channel, "lost?"))
        assert receivers in (0, 1)  # 0: published before the re-subscription: lost
        assert await _until_receivers(publisher, channel, 1) == 1
        assert f"127.0.0.1:{promoted}" in shared.node_pubsub_mapping
        # the idle client's ClusterPubSub still points at the dead node
        assert list(separate.node_pubsub_mapping) == [f"127.0.0.1:{victim}"]
        with pytest.raises(RedisConnectionError):
            await separate.get_sharded_message(timeout=1)
        # the plain subscriber sees the drop, refreshes and subscribes at the new primary
        with pytest.raises(RedisConnectionError):
            await subscriber.read()
        assert await subscriber.reconnect() == promoted
        assert await publisher.spublish(channel, "after") == 2
        assert (await subscriber.read() or {}).get("data") == b"after"

        assert await script(keys=["{p7}n"]) == 2  # NOSCRIPT on the new primary: reloaded
        pending: Any = await publisher.xpending(stream, "persisters")
        assert pending["pending"] == 3  # the consumer group's PEL was replicated
        claimed: Any = await publisher.xautoclaim(
            stream, "persisters", "b", min_idle_time=0, start_id="0-0", count=10
        )
        assert len(claimed[1]) == 3
        for pubsub in (shared, separate):
            await pubsub.aclose()
        await subscriber.close()
    finally:
        await publisher.aclose()
        await idle.aclose()


async def _until_receivers(client: RedisCluster, channel: str, wanted: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        receivers = int(await _eventually(lambda: client.spublish(channel, "probe")))
        if receivers >= wanted or time.monotonic() > deadline:
            return receivers
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_slot_migration_ends_sharded_subscriptions_with_a_server_push(
    own_redis_cluster: LocalCluster,
) -> None:
    cluster = own_redis_cluster
    client = cluster_client(cluster)
    channel = "{p7}g:1"
    try:
        await client.initialize()
        subscriber = ShardSubscriber(client, [channel])
        source = await subscriber.connect()
        pubsub = client.pubsub()
        await pubsub.ssubscribe(channel)
        await pubsub.get_sharded_message(timeout=2)
        target = next(p for p in cluster.ports[:3] if p != source)
        await asyncio.to_thread(cluster.migrate_slot, slot_of(channel), target)
        # the old owner pushes sunsubscribe (count 0) to every shard subscriber of the slot
        push = await subscriber.read()
        assert push is not None and (push["type"], push["channel"], push["data"]) == (
            "sunsubscribe",
            channel.encode(),
            0,
        )
        assert (await pubsub.get_sharded_message(timeout=2) or {}).get("type") == "sunsubscribe"
        assert channel.encode() in pubsub.shard_channels  # redis-py still thinks it is subscribed
        # the first publish follows MOVED to the new owner, where our subscriber is not: lost
        # for it (the client's own ClusterPubSub re-subscribes in the background, racing)
        assert await client.spublish(channel, "lost") in (0, 1)
        assert _port(_owner(client, channel)) == target
        assert await subscriber.reconnect() == target
        assert await client.spublish(channel, "after") >= 1
        assert (await subscriber.read() or {}).get("data") == b"after"  # "lost" never came
        await pubsub.aclose()
        await subscriber.close()
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_other_shards_keep_serving_during_a_failover_without_full_coverage(
    tmp_path: Path,
) -> None:
    # with the default cluster-require-full-coverage yes, every node answers CLUSTERDOWN from
    # the moment the dead primary is flagged FAIL until its replica is promoted; redis-py
    # retries that (0.25 s sleeps), so other shards' commands stalled ~1 s in scratch runs
    cluster = LocalCluster(tmp_path / "c", free_base_port(), require_full_coverage=False).start()
    client = cluster_client(cluster)
    try:
        await client.initialize()
        victim_key = "{p7}k"
        other_key = next(
            f"o{i}" for i in range(100) if cluster.owner_of(f"o{i}") != cluster.owner_of(victim_key)
        )
        slowest = 0.0
        done = asyncio.Event()

        async def write_other_shard() -> None:
            nonlocal slowest
            while not done.is_set():
                began = time.monotonic()
                await client.set(other_key, 1)
                slowest = max(slowest, time.monotonic() - began)
                await asyncio.sleep(0.02)

        writer = asyncio.create_task(write_other_shard())
        victim = cluster.kill_primary_of(victim_key)
        with pytest.raises(RedisConnectionError):
            await client.set(victim_key, 1)  # its own slots: errors until the promotion
        await asyncio.to_thread(cluster.wait_failover, victim)
        await _eventually(lambda: client.set(victim_key, 2))
        done.set()
        await writer
        assert slowest < 0.5
    finally:
        await client.aclose()
        cluster.stop()


# -- (b) scripts --------------------------------------------------------------------------------


async def test_scripts_run_when_every_key_shares_a_hash_tag(
    redis_cluster: LocalCluster, cluster_redis: RedisCluster
) -> None:
    tag = uuid.uuid4().hex[:8]
    script = cluster_redis.register_script(
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"
    )
    assert await script(keys=[f"{{{tag}}}a", f"{{{tag}}}b"], args=["x"]) == 1
    with pytest.raises(RedisClusterException, match="all keys must map to the same key slot"):
        await script(keys=[f"{{{tag}}}a", f"{{{tag}.}}b"], args=["x"])  # refused client-side
    owner = _owner(cluster_redis, f"{{{tag}}}a")
    with pytest.raises(ClusterCrossSlotError):
        await cluster_redis.execute_command(
            "EVAL", "return 1", 2, f"{{{tag}}}a", f"{{{tag}.}}b", target_nodes=owner
        )
    far = next(f"far{i}" for i in range(1000) if redis_cluster.owner_of(f"far{i}") != owner.port)
    with pytest.raises(ResponseError, match="non local key"):  # undeclared key on another node
        await cluster_redis.eval(f"return redis.call('GET', '{far}')", 1, f"{{{tag}}}a")
    with pytest.raises(ResponseError, match="not allowed from script"):
        await cluster_redis.eval("return redis.call('WAIT', 1, 10)", 1, f"{{{tag}}}a")
    with pytest.raises(RedisClusterException, match="evalsha is blocked"):
        cluster_redis.pipeline().evalsha(script.sha, 1, f"{{{tag}}}b")
    pipe = cluster_redis.pipeline(transaction=False)
    pipe.execute_command("EVALSHA", script.sha, 2, f"{{{tag}}}a", f"{{{tag}}}b", "y")
    assert await pipe.execute() == [2]
    await cluster_redis.delete(f"{{{tag}}}a", f"{{{tag}}}b")


# -- (c) MOVED / ASK / TRYAGAIN -----------------------------------------------------------------


@pytest.mark.slow
async def test_redirections_during_and_after_a_slot_migration(
    own_redis_cluster: LocalCluster,
) -> None:
    cluster = own_redis_cluster
    setup, client, busy = (cluster_client(cluster) for _ in range(3))
    try:
        keys = [f"{{mig}}:{i}" for i in range(10)]
        await setup.mset_nonatomic({key: key for key in keys})
        await setup.xgroup_create("{mig}persist", "g", id="0", mkstream=True)
        await asyncio.gather(client.initialize(), busy.initialize())
        slot = slot_of(keys[0])
        source = cluster.owner_of_slot(slot)
        target = next(p for p in cluster.ports[:3] if p != source)
        blocked = asyncio.ensure_future(
            setup.xreadgroup("g", "c", {"{mig}persist": ">"}, block=8000)
        )
        await asyncio.sleep(0.2)
        migration = await asyncio.to_thread(cluster.begin_migration, slot, target)
        moved = keys[:5]
        cluster.node(source).command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *moved)
        asking = _calls(cluster, target, "asking")
        # a client with one pooled connection per node follows ASK transparently
        assert await client.get(keys[0]) == keys[0].encode()  # moved: ASKING + GET on target
        assert await client.get(keys[9]) == keys[9].encode()  # not moved: served by the source
        assert await client.set("{mig}:new", 1)  # a new key goes to the target
        assert _calls(cluster, target, "asking") == asking + 2
        assert _port(_owner(client, keys[0])) == source  # ASK leaves the slot map alone
        # ... but redis-py sends ASKING and the command as two pool checkouts: with two idle
        # connections to the target they land on different ones, the command is answered
        # MOVED (back to the source), and the ASK/MOVED ping-pong ends in "TTL exhausted"
        node = busy.get_node(host="127.0.0.1", port=target)
        assert node is not None
        await asyncio.gather(*(busy.execute_command("PING", target_nodes=node) for _ in "12"))
        assert len(node._free) == 2
        with pytest.raises(ClusterError, match="TTL exhausted"):
            await busy.get(keys[0])
        # multi-key commands and scripts whose keys are split between the nodes, or missing
        # (a new idempotency key), get TRYAGAIN until redis-py's 16 redirections are spent
        # (~0.4 s), then ClusterError; the client's `retry` settings do not apply
        two_keys = setup.register_script(
            "redis.call('SET', KEYS[2], 'n'); return redis.call('GET', KEYS[1])"
        )
        for split in ([keys[8], "{mig}:fresh"], [keys[8], keys[3]]):
            began = time.monotonic()
            with pytest.raises(ClusterError, match="TTL exhausted"):
                await two_keys(keys=split)
            assert time.monotonic() - began < 2
        await asyncio.to_thread(migration.move_all)
        # a blocked XREADGROUP on a stream that moves away is unblocked with an error
        with pytest.raises(ResponseError, match="UNBLOCKED the stream key no longer exists"):
            await blocked
        await asyncio.to_thread(migration.finish)
        # after SETSLOT NODE: MOVED, followed transparently (any pool size); the map is patched
        for each in (client, busy, setup):
            assert await each.get(keys[9]) == keys[9].encode()
            assert _port(_owner(each, keys[0])) == target
        assert await two_keys(keys=[keys[8], "{mig}:fresh2"]) == keys[8].encode()
    finally:
        for each in (setup, client, busy):
            await each.aclose()


def _calls(cluster: LocalCluster, port: int, command: str) -> int:
    stats = cluster.node(port).info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


# -- (d) WAIT -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_wait_counts_replicas_of_the_writes_on_its_own_connection(
    own_redis_cluster: LocalCluster,
) -> None:
    cluster = own_redis_cluster
    client = cluster_client(cluster)
    key = "{p7}seq"
    try:
        await client.initialize()
        owner = _owner(client, key)
        replica = cluster.replicas_of(_port(owner))[0]
        # without target_nodes WAIT goes to the client's default node, not the key's owner
        elsewhere = next(n for n in client.get_primaries() if n.port != owner.port)
        client.set_default_node(elsewhere)
        before = _calls(cluster, _port(elsewhere), "wait")
        await client.execute_command("WAIT", 0, 10)
        assert _calls(cluster, _port(elsewhere), "wait") == before + 1
        # the pattern that works: the write and WAIT pipelined to the owner, on one connection
        assert await _write_and_wait(client, key, owner, 1000) == [True, 1]
        cluster.freeze(replica)
        try:
            began = time.monotonic()
            assert await _write_and_wait(client, key, owner, 300) == [True, 0]  # timed out
            assert time.monotonic() - began >= 0.3
            # WAIT on another connection says nothing about this write: over RESP2 a fresh
            # connection gets 1 at once although the replica is frozen
            fresh = Redis(port=_port(owner), protocol=2)
            assert await fresh.execute_command("WAIT", 1, 300) == 1  # type: ignore[no-untyped-call]
            # inside MULTI, WAIT does not block
            multi = fresh.pipeline(transaction=True)
            multi.set(key, "m")
            multi.execute_command("WAIT", 1, 300)
            began = time.monotonic()
            assert await multi.execute() == [True, 0]
            assert time.monotonic() - began < 0.2
            await fresh.aclose()
        finally:
            cluster.thaw(replica)
        assert await _write_and_wait(client, key, owner, 2000) == [True, 1]
        with pytest.raises(ResponseError, match="WAIT cannot be used with replica"):
            await client.execute_command(
                "WAIT", 1, 10, target_nodes=client.get_node(host="127.0.0.1", port=replica)
            )
    finally:
        await client.aclose()


async def _write_and_wait(client: RedisCluster, key: str, owner: Any, timeout_ms: int) -> Any:
    pipe = client.pipeline(transaction=False)
    pipe.set(key, "v")
    pipe.execute_command("WAIT", 1, timeout_ms, target_nodes=owner)
    return await pipe.execute()


# -- (e) partition hash tags --------------------------------------------------------------------


def partition_tags(count: int) -> list[str]:
    """Hash tags for ``count`` partitions: tag ``i`` hashes to the centre of slot band ``i``.

    The proposal of docs/architecture/redis-cluster-notes.md (``count`` equal slot bands).

    Decimal strings ``"0"``, ``"1"``, ... are hashed in order; the first that lands exactly on
    band ``i``'s centre slot becomes tag ``i``. Deterministic, about 70,000 CRC16s (~60 ms).
    """
    centres = {(2 * i + 1) * REDIS_CLUSTER_HASH_SLOTS // (2 * count): i for i in range(count)}
    tags = [""] * count
    candidate = 0
    while not all(tags):
        index = centres.get(slot_of(str(candidate)))
        if index is not None and not tags[index]:
            tags[index] = str(candidate)
        candidate += 1
    return tags


def _per_primary(slots: list[int], primaries: int) -> list[int]:
    ranges = split_slots(primaries)
    return [sum(low <= s <= high for s in slots) for low, high in ranges]


@pytest.mark.parametrize("count", [16, 32, 64, 128])
def test_centred_tags_spread_partitions_evenly_where_index_tags_do_not(count: int) -> None:
    centred = [slot_of(tag) for tag in partition_tags(count)]
    assert len(set(centred)) == count
    for primaries in range(2, 11):
        spread = _per_primary(centred, primaries)
        assert max(spread) - min(spread) <= 1, (primaries, spread)
    index = [slot_of(str(i)) for i in range(count)]  # the tags {0}, {1}, ...
    worst = max(max(s) - min(s) for s in (_per_primary(index, p) for p in (3, 5)))
    assert worst >= 2  # e.g. 32 partitions {0}..{31}: 13/11/8 on 3 primaries


def test_centred_tags_on_the_live_cluster(redis_cluster: LocalCluster) -> None:
    owners = [redis_cluster.owner_of(f"{{{tag}}}") for tag in partition_tags(64)]
    assert sorted(owners.count(port) for port in set(owners)) == [21, 21, 22]


# -- (f) streams per partition ------------------------------------------------------------------


async def test_one_stream_per_partition_for_the_persisters(
    cluster_redis: RedisCluster,
) -> None:
    tag = uuid.uuid4().hex[:8]
    stream, other = f"{{{tag}}}persist", f"{{{tag}.}}persist"
    for name in (stream, other):
        await cluster_redis.xgroup_create(name, "persisters", id="0", mkstream=True)
        await cluster_redis.xadd(name, {"n": 1})
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster_redis.xreadgroup("persisters", "a", {stream: ">", other: ">"}, count=5)
    entries: Any = await cluster_redis.xreadgroup("persisters", "a", {stream: ">"}, count=5)
    entry_id = entries[0][1][0][0]
    pipe = cluster_redis.pipeline(transaction=True)  # MULTI on one slot works in a cluster
    pipe.xack(stream, "persisters", entry_id)
    pipe.xdel(stream, entry_id)
    assert await pipe.execute() == [1, 1]
    await cluster_redis.xreadgroup("persisters", "a", {other: ">"}, count=5)
    claimed: Any = await cluster_redis.xautoclaim(
        other, "persisters", "b", min_idle_time=0, start_id="0-0", count=5
    )
    assert len(claimed[1]) == 1
    await cluster_redis.delete(stream, other)
