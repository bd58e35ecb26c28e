"""The bus contract, run against ``MemoryBus`` and ``RedisBus``; then RedisBus under outages.

Every guarantee broadcaster's Redis backend breaks (ADR 0005,
``test_broadcaster_defects.py``) is asserted here for our own bus.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis, RedisCluster

from scripts.redis_cluster import LocalCluster
from server.bus.base import Bus, BusUnavailable
from server.bus.memory import MemoryBus
from server.bus.partitions import Partitions
from server.bus.redis import RedisBus
from server.redis_client import create_redis
from server.resources import channel_route
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.services import REDIS_URL

REDIS_SERVER = shutil.which("redis-server")


class Inbox:
    """A bus handler that records what it receives (compared by identity, as handlers are)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))

    @property
    def payloads(self) -> list[bytes]:
        """What arrived, in order."""
        return [payload for _, payload in self.messages]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` messages have arrived."""
        await eventually(lambda: len(self.messages) >= count, timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


def room() -> str:
    """A channel name no other test uses."""
    return f"room:{uuid.uuid4().hex[:12]}"


async def barrier(bus: Bus) -> None:
    """Return once everything published before has been delivered.

    Publishes on a fresh channel and waits for it: both buses deliver in publish order (one
    subscriber connection per process for Redis), so anything published earlier is in by then.
    """
    channel, inbox = room(), Inbox()
    await bus.subscribe(channel, inbox)
    await bus.publish(channel, b"barrier")
    await inbox.wait_for(1)
    await bus.unsubscribe(channel, inbox)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The subject: the in-process bus, then the Redis bus on the test Redis and cluster.

    On the cluster: sharded pub/sub over 4 partitions, as a node runs it.
    """
    if request.param == "memory":
        memory = MemoryBus()
        await memory.start()
        yield memory
        await memory.stop()
        return
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    publisher: Redis | RedisCluster
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        publisher = await create_redis(cluster.url, cluster=True).initialize()
        partitions = Partitions(prefix, 4, sharded=True)
        redis_bus = RedisBus(
            publisher, cluster.url, partitions=partitions, route=channel_route(partitions)
        )
    else:
        publisher = Redis.from_url(REDIS_URL)
        redis_bus = RedisBus(publisher=publisher, url=REDIS_URL, prefix=prefix)
    try:
        await redis_bus.start()
        assert redis_bus.connected
        yield redis_bus
    finally:
        await asyncio.wait_for(redis_bus.stop(), 5)
        await publisher.aclose()


async def test_first_subscription_receives(bus: Bus) -> None:
    """The very first subscribe of a fresh bus, then a publish: the handler receives it."""
    channel, inbox = room(), Inbox()
    await bus.subscribe(channel, inbox)
    await bus.publish(channel, b"hello")
    await inbox.wait_for(1)
    assert inbox.messages == [(channel, b"hello")]


async def test_order_is_preserved_for_500_messages(bus: Bus) -> None:
    """500 messages published one after another arrive complete and in order."""
    channel, inbox = room(), Inbox()
    await bus.subscribe(channel, inbox)
    sent = [f"message {index}".encode() for index in range(500)]
    for payload in sent:
        await bus.publish(channel, payload)
    await inbox.wait_for(500, timeout=10)
    assert inbox.payloads == sent


async def test_two_handlers_both_receive_and_one_can_leave(bus: Bus) -> None:
    """Two handlers on one channel both receive; after one unsubscribes the other still does."""
    channel, first, second = room(), Inbox(), Inbox()
    await bus.subscribe(channel, first)
    await bus.subscribe(channel, second)
    await bus.publish(channel, b"one")
    await first.wait_for(1)
    await second.wait_for(1)

    await bus.unsubscribe(channel, first)
    await bus.publish(channel, b"two")
    await second.wait_for(2)
    await barrier(bus)
    assert first.payloads == [b"one"]
    assert second.payloads == [b"one", b"two"]


async def test_last_unsubscribe_stops_delivery(bus: Bus) -> None:
    """After the last handler leaves nothing is delivered; subscribing again works again."""
    channel, inbox = room(), Inbox()
    await bus.subscribe(channel, inbox)
    await bus.publish(channel, b"while subscribed")
    await inbox.wait_for(1)

    await bus.unsubscribe(channel, inbox)
    await bus.publish(channel, b"after leaving")
    await barrier(bus)
    assert inbox.payloads == [b"while subscribed"]

    again = Inbox()
    await bus.subscribe(channel, again)
    await bus.publish(channel, b"back")
    await again.wait_for(1)
    assert again.payloads == [b"back"]
    assert inbox.payloads == [b"while subscribed"]


async def test_twenty_concurrent_subscribes_to_a_new_channel_all_receive(bus: Bus) -> None:
    """20 subscribe() calls at once to a new channel: each receives what follows its return."""
    channel = room()
    inboxes = [Inbox() for _ in range(20)]

    async def join(index: int) -> None:
        await bus.subscribe(channel, inboxes[index])
        await bus.publish(channel, f"joined {index}".encode())  # must reach at least itself

    await asyncio.wait_for(asyncio.gather(*(join(index) for index in range(20))), 10)
    await bus.publish(channel, b"to everyone")
    await barrier(bus)
    for index, inbox in enumerate(inboxes):
        assert f"joined {index}".encode() in inbox.payloads
        assert len(set(inbox.payloads)) == len(inbox.payloads)  # nothing twice
        assert inbox.payloads[-1] == b"to everyone"


async def test_leaving_and_coming_back_at_once_keeps_the_channel(bus: Bus) -> None:
    """The answer to an unsubscribe that a re-subscribe followed is not a lost subscription.

    (On a cluster, the server's own ``sunsubscribe`` push means the slot moved; ours must not
    be taken for one, or the bus reconnects and every socket is told to resubscribe.)
    """
    channel, resyncs = room(), []
    bus.on_resync(lambda _channels: resyncs.append(1))
    for turn in range(20):
        inbox = Inbox()
        await bus.subscribe(channel, inbox)
        await bus.publish(channel, f"turn {turn}".encode())
        await inbox.wait_for(1)
        await bus.unsubscribe(channel, inbox)
    last = Inbox()
    await bus.subscribe(channel, last)
    await barrier(bus)
    await bus.publish(channel, b"still here")
    await last.wait_for(1)
    assert last.payloads == [b"still here"]
    assert resyncs == []


async def test_raising_handler_does_not_stop_others_or_later_messages(bus: Bus) -> None:
    """A handler that raises: the other handler still receives, and so do later messages."""
    channel, inbox = room(), Inbox()
    calls: list[bytes] = []

    def broken(_channel: str, payload: bytes) -> None:
        calls.append(payload)
        raise RuntimeError("handler bug")

    await bus.subscribe(channel, broken)
    await bus.subscribe(channel, inbox)
    await bus.publish(channel, b"first")
    await bus.publish(channel, b"second")
    await inbox.wait_for(2)
    assert inbox.payloads == [b"first", b"second"]
    assert calls == [b"first", b"second"]

    other, later = room(), Inbox()
    await bus.subscribe(other, later)
    await bus.publish(other, b"elsewhere")
    await later.wait_for(1)
    assert later.payloads == [b"elsewhere"]


async def test_non_utf8_payloads_are_delivered_intact(bus: Bus) -> None:
    """Bytes that are not UTF-8 arrive unchanged, and a valid message behind them arrives too."""
    channel, inbox = room(), Inbox()
    binary = b"\xff\xfe\x00\x80\xc3("
    await bus.subscribe(channel, inbox)
    await bus.publish(channel, binary)
    await bus.publish(channel, b"valid")
    await inbox.wait_for(2)
    assert inbox.payloads == [binary, b"valid"]
    assert all(isinstance(payload, bytes) for payload in inbox.payloads)


async def test_publish_many_reaches_several_channels(bus: Bus) -> None:
    """publish_many to three channels: each receives it once; a fourth channel gets nothing."""
    channels = [room() for _ in range(3)]
    inboxes = [Inbox() for _ in channels]
    bystander_channel, bystander = room(), Inbox()
    for channel, inbox in zip(channels, inboxes, strict=True):
        await bus.subscribe(channel, inbox)
    await bus.subscribe(bystander_channel, bystander)

    await bus.publish_many(channels, b"broadcast")
    await bus.publish_many([], b"to nobody")
    for inbox in inboxes:
        await inbox.wait_for(1)
    await barrier(bus)
    for channel, inbox in zip(channels, inboxes, strict=True):
        assert inbox.messages == [(channel, b"broadcast")]
    assert bystander.messages == []


# --- RedisBus on a Redis the test owns, so it can kill it -----------------------------------


class OwnedBus:
    """A RedisBus (publishing through the app's client) on a Redis the test owns."""

    def __init__(self, server: OwnRedis) -> None:
        self.server = server
        self.prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
        self.publisher = create_redis(server.url)
        self.bus = RedisBus(publisher=self.publisher, url=server.url, prefix=self.prefix)

    async def numsub(self, channels: list[str]) -> list[int]:
        """How many connections the (current) Redis has subscribed to each channel."""
        async with Redis.from_url(self.server.url) as probe:
            counts = await probe.pubsub_numsub(*(self.prefix + c for c in channels))
        return [int(count) for _, count in counts]

    async def close(self) -> None:
        """Stop the bus and close the publisher."""
        await asyncio.wait_for(self.bus.stop(), 5)
        await self.publisher.aclose()


@pytest.fixture
async def owned(owned_redis: OwnRedis) -> AsyncIterator[OwnedBus]:
    """A started RedisBus on the owned Redis."""
    subject = OwnedBus(owned_redis)
    try:
        await subject.bus.start()
        assert subject.bus.connected
        yield subject
    finally:
        await subject.close()


async def test_redis_restart_reconnects_resubscribes_and_signals_resync(owned: OwnedBus) -> None:
    """Redis SIGKILLed, down ~0.7 s, restarted: the bus re-subscribes, resyncs, delivers again."""
    bus = owned.bus
    resyncs: list[frozenset[str]] = []
    bus.on_resync(resyncs.append)
    channels = [room() for _ in range(3)]
    inboxes = [Inbox() for _ in channels]
    for channel, inbox in zip(channels, inboxes, strict=True):
        await bus.subscribe(channel, inbox)
    await bus.publish(channels[0], b"before")
    await inboxes[0].wait_for(1)

    owned.server.kill()
    await eventually(lambda: not bus.connected)
    await asyncio.sleep(0.7)
    assert resyncs == []  # nothing to resync onto while Redis is down
    await owned.server.astart()

    await eventually(lambda: bus.connected and len(resyncs) == 1, timeout=10)
    counts: list[int] = []
    for _ in range(100):  # SUBSCRIBE is sent before the resync signal, confirmed just after
        counts = await owned.numsub(channels)
        if counts == [1, 1, 1]:
            break
        await asyncio.sleep(0.02)
    assert counts == [1, 1, 1]  # every channel re-subscribed on the new Redis

    for channel in channels:
        await bus.publish(channel, b"after")
    await inboxes[0].wait_for(2)
    for inbox in inboxes[1:]:
        await inbox.wait_for(1)
    assert inboxes[0].payloads == [b"before", b"after"]
    assert all(inbox.payloads == [b"after"] for inbox in inboxes[1:])
    assert resyncs == [frozenset(channels)]  # one Redis, one shard: every channel


async def test_subscribe_while_redis_is_down_raises_bus_unavailable(owned: OwnedBus) -> None:
    """Redis killed: subscribe() raises BusUnavailable at once, registers nothing, never hangs."""
    bus = owned.bus
    owned.server.kill()

    started = time.monotonic()
    with pytest.raises(BusUnavailable):  # straight after the kill, before the reader notices
        await asyncio.wait_for(bus.subscribe(room(), Inbox()), 2.5)
    assert time.monotonic() - started < 2.5

    await eventually(lambda: not bus.connected)
    channel = room()
    started = time.monotonic()
    with pytest.raises(BusUnavailable):
        await asyncio.wait_for(bus.subscribe(channel, Inbox()), 2.5)
    assert time.monotonic() - started < 0.5
    assert channel not in bus.channels()


async def test_listening_while_redis_is_down_takes_effect_once_it_is_back(
    owned: OwnedBus,
) -> None:
    """listen() never raises: a node's own channel is subscribed when Redis comes back."""
    bus = owned.bus
    owned.server.kill()
    await eventually(lambda: not bus.connected)
    channel, inbox = room(), Inbox()
    await asyncio.wait_for(bus.listen(channel, inbox), 2.5)
    assert channel in bus.channels()
    await owned.server.astart()
    await eventually(lambda: bus.connected, timeout=10)
    for _ in range(100):
        if await owned.numsub([channel]) == [1]:
            break
        await asyncio.sleep(0.02)
    await bus.publish(channel, b"back")
    await inbox.wait_for(1)
    assert inbox.payloads == [b"back"]


async def test_listen_on_a_live_bus_is_a_subscription(bus: Bus) -> None:
    """listen() on a connected bus delivers like subscribe()."""
    channel, inbox = room(), Inbox()
    await bus.listen(channel, inbox)
    await bus.publish(channel, b"hello")
    await inbox.wait_for(1)
    assert inbox.payloads == [b"hello"]


async def test_stop_returns_promptly_while_connected(owned_redis: OwnRedis) -> None:
    """stop() on a connected bus returns within a second and closes its connections."""
    subject = OwnedBus(owned_redis)
    try:
        await subject.bus.start()
        await subject.bus.subscribe(room(), Inbox())
        started = time.monotonic()
        await asyncio.wait_for(subject.bus.stop(), 5)
        assert time.monotonic() - started < 1.0
    finally:
        await subject.publisher.aclose()


async def test_stop_returns_promptly_while_redis_is_down(owned_redis: OwnRedis) -> None:
    """stop() while the bus is busy reconnecting to a dead Redis returns within a second."""
    subject = OwnedBus(owned_redis)
    try:
        await subject.bus.start()
        await subject.bus.subscribe(room(), Inbox())
        owned_redis.kill()
        await eventually(lambda: not subject.bus.connected)
        await asyncio.sleep(0.3)  # inside the reconnect loop by now
        started = time.monotonic()
        await asyncio.wait_for(subject.bus.stop(), 5)
        assert time.monotonic() - started < 1.0
    finally:
        await subject.publisher.aclose()


async def test_a_cluster_primary_dropping_its_subscribers_resyncs_only_its_channels(
    redis_cluster: LocalCluster,
) -> None:
    """One primary ends our subscriber connections: the resync names its partitions' channels.

    The groups of the other primaries lost nothing; resyncing them too would replay every
    subscribed group of the node for each shard that reconnects in a failover.
    """
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    publisher = await create_redis(redis_cluster.url, cluster=True).initialize()
    partitions = Partitions(prefix, 4, sharded=True)
    route = channel_route(partitions)
    bus = RedisBus(publisher, redis_cluster.url, partitions=partitions, route=route)
    resyncs: list[frozenset[str]] = []
    bus.on_resync(resyncs.append)
    by_partition: dict[int, str] = {}
    while len(by_partition) < partitions.count:
        channel = f"g:{uuid.uuid4()}"  # a group's channel lives in the group's partition
        by_partition.setdefault(route(channel), channel)
    try:
        await bus.start()
        for channel in by_partition.values():
            await bus.subscribe(channel, Inbox())
        node_of = {
            c: publisher.get_node_from_key(partitions.channel(p, c)).name
            for p, c in by_partition.items()
        }
        victim = node_of[by_partition[0]]
        on_victim = frozenset(c for c, node in node_of.items() if node == victim)
        assert 0 < len(on_victim) < partitions.count  # the partitions span primaries
        primary = publisher.get_node(node_name=victim)
        clients = await publisher.execute_command("CLIENT LIST", target_nodes=primary)
        ours = [c["id"] for c in clients if c.get("name") == bus.client_name]
        assert ours
        for client_id in ours:
            await publisher.execute_command("CLIENT KILL", "ID", client_id, target_nodes=primary)

        await eventually(lambda: len(resyncs) == len(ours) and bus.connected, timeout=10)
        await asyncio.sleep(0.5)  # no other shard follows
        assert frozenset().union(*resyncs) == on_victim
        for channel in by_partition.values():
            inbox = Inbox()
            await bus.subscribe(channel, inbox)
            await bus.publish(channel, b"after")
            await inbox.wait_for(1)
    finally:
        await bus.stop()
        await publisher.aclose()
