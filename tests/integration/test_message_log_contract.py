"""The MessageLog contract, run in process, on one real Redis and on a real Redis Cluster.

Each implementation is paired with its bus (MemoryBus, or a RedisBus on the same prefix and
partitions) so the tests see what every node would receive. Redis-only scenarios follow: a
new lease holder adopts what an earlier persister left, and the persistence streams' lag.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis, RedisCluster

from protocol.frames import MessageCreated
from scripts.redis_cluster import LocalCluster
from server.bus.base import Bus
from server.bus.memory import MemoryBus
from server.bus.partitions import Partitions
from server.bus.redis import RedisBus
from server.errors import RateLimited, ServiceUnavailable
from server.realtime import redis_erasure
from server.realtime.envelope import Envelope, Kind, group_channel, unpack
from server.realtime.floors import RESERVE_AHEAD_AT, SEQ_BLOCK
from server.realtime.log import Accepted, MessageLog, NewMessage, tombstone
from server.realtime.memory_log import MemoryMessageLog
from server.realtime.redis_log import RedisMessageLog
from server.redis_client import RedisClient
from server.resources import channel_route
from server.security.ratelimit import Rate, RedisRateLimiter
from server.store.messages import tombstone_row
from tests.fixtures.floors import DictFloors
from tests.fixtures.redis_cluster import cluster_client, drop_cluster_prefix
from tests.fixtures.services import REDIS_URL, drop_redis_prefix

GENEROUS = Rate(1000, 1.0)
WINDOW = 100
WINDOW_S = 3600


@dataclass
class Harness:
    """A message log, the bus it publishes on, and its stand-in database's stored seqs."""

    log: MessageLog
    bus: Bus
    floors: DictFloors
    partitions: Partitions
    client: RedisClient | None = None
    min_replicas: int = 0
    cleanup: Callable[[], Awaitable[None]] | None = None

    def partition(self, group_id: uuid.UUID) -> int:
        """The persistence stream a group's messages are queued on."""
        return self.partitions.of(group_id)

    @property
    def seeds(self) -> dict[uuid.UUID, int]:
        """The highest stored seq the test chose for each group (0 otherwise)."""
        return self.floors.persisted

    async def listen(self, group_id: uuid.UUID) -> Inbox:
        """Collect every envelope published for ``group_id`` from now on."""
        inbox = Inbox()
        await self.bus.subscribe(group_channel(group_id), inbox)
        return inbox


class Inbox(list[Envelope]):
    """A bus handler keeping what it receives, unpacked, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, channel: str, payload: bytes) -> None:
        self.append(unpack(payload))
        self._changed.set()

    async def until(self, count: int) -> Inbox:
        """Wait (at most two seconds) until ``count`` envelopes were received."""
        async with asyncio.timeout(2.0):
            while len(self) < count:
                self._changed.clear()
                await self._changed.wait()
        return self


def new_message(
    group_id: uuid.UUID,
    author_id: uuid.UUID,
    client_msg_id: str | None = None,
    body: str = "hello",
) -> NewMessage:
    """A validated message created now, at millisecond precision like the service makes it."""
    now = datetime.now(UTC)
    return NewMessage(
        group_id=group_id,
        author_id=author_id,
        message_id=uuid.uuid4(),
        body=body,
        client_msg_id=client_msg_id or uuid.uuid4().hex,
        created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
    )


def created_ms(message: NewMessage) -> int:
    """The message's creation time in epoch milliseconds."""
    return int(message.created_at.timestamp() * 1000)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A Redis client of this test, closed afterwards."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key and channel namespace of this test only."""
    value = f"sbtest:{uuid.uuid4().hex[:12]}:"
    yield value
    await drop_redis_prefix(value)


async def redis_harness(
    redis: RedisClient,
    prefix: str,
    url: str = REDIS_URL,
    partitions: Partitions | None = None,
    min_replicas: int = 0,
) -> Harness:
    """A RedisMessageLog with a started RedisBus on the same prefix and partitions."""
    partitions = partitions or Partitions(prefix)
    bus = RedisBus(redis, url, partitions=partitions, route=channel_route(partitions))
    await bus.start()
    floors = DictFloors()
    log = redis_log(redis, partitions, floors, min_replicas)
    return Harness(log, bus, floors, partitions, client=redis, min_replicas=min_replicas)


def redis_log(
    redis: RedisClient, partitions: Partitions, floors: DictFloors, min_replicas: int = 0
) -> RedisMessageLog:
    """A RedisMessageLog (another node's, when called again with the same arguments)."""
    limiter = RedisRateLimiter(redis, partitions.prefix)
    return RedisMessageLog(
        redis,
        partitions,
        floors,
        limiter,
        window=WINDOW,
        window_s=WINDOW_S,
        min_replicas=min_replicas,
        ack_timeout_ms=2000,
    )


def memory_harness() -> Harness:
    """A MemoryMessageLog publishing on a MemoryBus."""
    bus = MemoryBus()
    floors = DictFloors()
    log = MemoryMessageLog(bus, floors, window=WINDOW, window_s=WINDOW_S)
    return Harness(log, bus, floors, Partitions(""))


async def cluster_harness(
    request: pytest.FixtureRequest, prefix: str, min_replicas: int = 0
) -> Harness:
    """The Redis log on the shared Redis Cluster, 16 partitions (cleaned up after the test).

    With ``min_replicas`` 1, acks (and persistence reads) wait for a replica.
    """
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    client = await cluster_client(cluster).initialize()
    partitions = Partitions(prefix, 16, sharded=True)
    made = await redis_harness(client, prefix, cluster.url, partitions, min_replicas)

    async def cleanup() -> None:
        await drop_cluster_prefix(client, prefix)
        await client.aclose()

    made.cleanup = cleanup
    return made


@pytest.fixture(params=["memory", "redis", "cluster", "cluster-replicated"])
async def harness(
    request: pytest.FixtureRequest, redis: Redis, prefix: str
) -> AsyncIterator[Harness]:
    """Each implementation of the MessageLog contract, with its bus."""
    if request.param == "memory":
        made = memory_harness()
    elif request.param == "redis":
        made = await redis_harness(redis, prefix)
    else:
        made = await cluster_harness(request, prefix, int(request.param == "cluster-replicated"))
    yield made
    await made.bus.stop()
    if made.cleanup is not None:
        await made.cleanup()


@pytest.fixture(params=["redis", "cluster", "cluster-replicated"])
async def redis_only(
    request: pytest.FixtureRequest, redis: Redis, prefix: str
) -> AsyncIterator[Harness]:
    """The Redis implementation alone, on one Redis and on a cluster."""
    if request.param == "redis":
        made = await redis_harness(redis, prefix)
    else:
        made = await cluster_harness(request, prefix, int(request.param == "cluster-replicated"))
    yield made
    await made.bus.stop()
    if made.cleanup is not None:
        await made.cleanup()


def ids(count: int) -> list[uuid.UUID]:
    """Fresh ids (groups or users)."""
    return [uuid.uuid4() for _ in range(count)]


# --- seq ---------------------------------------------------------------------------------


async def test_append_assigns_gapless_seq_after_the_seed(harness: Harness) -> None:
    """A group whose database holds seq 41 continues at 42, 43, ... without gaps."""
    group, author = ids(2)
    harness.seeds[group] = 41
    messages = [new_message(group, author) for _ in range(5)]
    acks = [await harness.log.append(m, GENEROUS) for m in messages]
    assert [a.seq for a in acks] == [42, 43, 44, 45, 46]
    assert acks[0] == Accepted(42, messages[0].message_id, messages[0].created_at, False)
    assert await harness.log.last_seq(group) == 46


async def test_seq_counters_are_per_group(harness: Harness) -> None:
    """Each group counts on its own."""
    first, second, author = ids(3)
    harness.seeds[second] = 10
    assert (await harness.log.append(new_message(first, author), GENEROUS)).seq == 1
    assert (await harness.log.append(new_message(second, author), GENEROUS)).seq == 11
    assert (await harness.log.append(new_message(first, author), GENEROUS)).seq == 2


async def test_concurrent_appends_get_distinct_consecutive_seqs(harness: Harness) -> None:
    """Appends racing on one group still get 1..n, each exactly once."""
    group, author = ids(2)
    acks = await asyncio.gather(
        *(harness.log.append(new_message(group, author), GENEROUS) for _ in range(20))
    )
    assert sorted(a.seq for a in acks) == list(range(1, 21))


async def test_last_seq_seeds_on_first_use(harness: Harness) -> None:
    """Before any append, a group's last seq is what the database says; then it grows."""
    group, author, empty = ids(3)
    harness.seeds[group] = 7
    assert await harness.log.last_seq(group) == 7
    assert await harness.log.last_seq(empty) == 0
    assert (await harness.log.append(new_message(group, author), GENEROUS)).seq == 8
    assert await harness.log.last_seq(group) == 8


# --- idempotency -------------------------------------------------------------------------


async def test_repeated_client_msg_id_returns_first_ack_and_publishes_nothing(
    harness: Harness,
) -> None:
    """A retried send gets the first ack, marked duplicate; no seq is used, nothing new is sent.

    When acks wait for replicas, a repeat publishes the first envelope again (its first
    publish may never have happened: the replicas were late); cursors drop it by seq.
    """
    group, author = ids(2)
    received = await harness.listen(group)
    first = new_message(group, author, client_msg_id="retry-me", body="original")
    ack = await harness.log.append(first, GENEROUS)
    retry = new_message(group, author, client_msg_id="retry-me", body="changed")
    again = await harness.log.append(retry, GENEROUS)
    assert again == Accepted(ack.seq, first.message_id, first.created_at, True)
    following = await harness.log.append(new_message(group, author), GENEROUS)
    assert following.seq == ack.seq + 1
    expected = [ack.seq, following.seq]
    if harness.min_replicas:
        expected.insert(1, ack.seq)
    await received.until(len(expected))
    assert [e.seq for e in received] == expected
    frames = [msgspec.json.decode(e.frame, type=MessageCreated) for e in received]
    assert {frame.body for frame in frames[:-1]} == {"original"}


async def test_same_client_msg_id_elsewhere_is_a_new_message(harness: Harness) -> None:
    """The idempotency key is (group, author, client_msg_id): other authors or groups differ."""
    group, other_group, author, other_author = ids(4)
    base = await harness.log.append(new_message(group, author, "k"), GENEROUS)
    by_other = await harness.log.append(new_message(group, other_author, "k"), GENEROUS)
    in_other = await harness.log.append(new_message(other_group, author, "k"), GENEROUS)
    assert (base.seq, by_other.seq, in_other.seq) == (1, 2, 1)
    assert not by_other.duplicate
    assert not in_other.duplicate


# --- publishing --------------------------------------------------------------------------


async def test_published_envelope_carries_the_message_frame(harness: Harness) -> None:
    """Every node receives a MESSAGE envelope with the seq and the JSON ``message`` frame."""
    group, author = ids(2)
    harness.seeds[group] = 3
    received = await harness.listen(group)
    message = new_message(group, author, client_msg_id="c-9", body='tricky "seq":0, body')
    ack = await harness.log.append(message, GENEROUS)
    (envelope,) = await received.until(1)
    assert envelope.kind is Kind.MESSAGE
    assert envelope.seq == ack.seq == 4
    assert envelope.exclude == ""
    assert envelope.subject == str(created_ms(message))
    frame = msgspec.json.decode(envelope.frame, type=MessageCreated)
    assert frame == MessageCreated(
        group_id=group,
        seq=4,
        message_id=message.message_id,
        author_id=author,
        body='tricky "seq":0, body',
        created_at=message.created_at,
        client_msg_id="c-9",
    )


async def test_envelopes_arrive_in_seq_order(harness: Harness) -> None:
    """Subscribers see a group's messages in seq order."""
    group, author = ids(2)
    received = await harness.listen(group)
    for _ in range(10):
        await harness.log.append(new_message(group, author), GENEROUS)
    await received.until(10)
    assert [e.seq for e in received] == list(range(1, 11))


# --- rate limiting -----------------------------------------------------------------------


async def test_rate_limit_refuses_past_the_burst(harness: Harness) -> None:
    """At 3 per second an author's fourth immediate message is refused and uses no seq."""
    group, author = ids(2)
    received = await harness.listen(group)
    rate = Rate(3, 1.0)
    acks = [await harness.log.append(new_message(group, author), rate) for _ in range(3)]
    with pytest.raises(RateLimited) as refused:
        await harness.log.append(new_message(group, author), rate)
    assert refused.value.retry_after >= 1
    assert [a.seq for a in acks] == [1, 2, 3]
    assert await harness.log.last_seq(group) == 3
    await received.until(3)
    await asyncio.sleep(0.05)
    assert len(received) == 3


async def test_rate_limit_is_per_author(harness: Harness) -> None:
    """One author's flood does not limit another author."""
    group, flooder, other = ids(3)
    rate = Rate(3, 1.0)
    for _ in range(3):
        await harness.log.append(new_message(group, flooder), rate)
    with pytest.raises(RateLimited):
        await harness.log.append(new_message(group, flooder), rate)
    assert (await harness.log.append(new_message(group, other), rate)).seq == 4


async def test_retry_of_an_acked_message_is_answered_even_when_over_the_rate(
    harness: Harness,
) -> None:
    """A lost ack can always be recovered: duplicates are answered before the rate check."""
    group, author = ids(2)
    rate = Rate(3, 1.0)
    first = new_message(group, author, client_msg_id="first")
    ack = await harness.log.append(first, rate)
    for _ in range(2):
        await harness.log.append(new_message(group, author), rate)
    again = await harness.log.append(new_message(group, author, client_msg_id="first"), rate)
    assert again.duplicate
    assert again.seq == ack.seq


# --- recovery window ---------------------------------------------------------------------


async def test_recent_returns_frames_after_a_seq_in_order(harness: Harness) -> None:
    """The window replays what a client missed: seq > after_seq, oldest first, same bytes."""
    group, author = ids(2)
    received = await harness.listen(group)
    messages = [new_message(group, author) for _ in range(5)]
    for message in messages:
        await harness.log.append(message, GENEROUS)
    await received.until(5)
    recent = await harness.log.recent(group, 2, 10)
    assert [r.seq for r in recent] == [3, 4, 5]
    assert [r.frame for r in recent] == [e.frame for e in received[2:]]
    assert [r.created_ms for r in recent] == [created_ms(m) for m in messages[2:]]


async def test_recent_honours_the_limit(harness: Harness) -> None:
    """At most ``limit`` frames, the oldest ones first."""
    group, author = ids(2)
    for _ in range(5):
        await harness.log.append(new_message(group, author), GENEROUS)
    assert [r.seq for r in await harness.log.recent(group, 0, 2)] == [1, 2]
    assert [r.seq for r in await harness.log.recent(group, 3, 1)] == [4]


async def test_recent_leaves_out_frames_older_than_the_time_window(harness: Harness) -> None:
    """A message older than ``window_s`` is no longer replayed, even if it is still kept."""
    group, author = ids(2)
    old = new_message(group, author)
    old = replace(old, created_at=old.created_at - timedelta(seconds=WINDOW_S + 60))
    await harness.log.append(old, GENEROUS)
    await harness.log.append(new_message(group, author), GENEROUS)
    assert [r.seq for r in await harness.log.recent(group, 0, 10)] == [2]


async def test_recent_after_the_last_seq_is_empty(harness: Harness) -> None:
    """A client that is up to date (or a group without messages) gets nothing to replay."""
    group, author, empty = ids(3)
    for _ in range(2):
        await harness.log.append(new_message(group, author), GENEROUS)
    assert await harness.log.recent(group, 2, 10) == []
    assert await harness.log.recent(empty, 0, 10) == []


# --- persistence queue -------------------------------------------------------------------


async def test_pending_yields_rows_and_acknowledged_entries_do_not_return(
    harness: Harness,
) -> None:
    """The persister gets each logged message as a ``messages`` row; once acked, it is done."""
    group, author = ids(2)
    harness.seeds[group] = 100
    messages = [new_message(group, author) for _ in range(3)]
    for message in messages:
        await harness.log.append(message, GENEROUS)
    entries = await harness.log.pending(harness.partition(group), "persister-1", 10, 1.0)
    assert [e.row for e in entries] == [m.row(101 + i) for i, m in enumerate(messages)]
    assert all(e.logged_at > 0 for e in entries)
    assert len({e.entry_id for e in entries}) == 3
    await harness.log.acknowledge(harness.partition(group), [e.entry_id for e in entries])
    assert await harness.log.pending(harness.partition(group), "persister-1", 10, 0.1) == []
    assert (await harness.log.lag())[0] == 0


async def test_pending_honours_count(harness: Harness) -> None:
    """A batch holds at most ``count`` entries; the rest come in the next batch, in order."""
    group, author = ids(2)
    for _ in range(3):
        await harness.log.append(new_message(group, author), GENEROUS)
    batch = await harness.log.pending(harness.partition(group), "persister-1", 2, 1.0)
    assert [e.row["seq"] for e in batch] == [1, 2]
    await harness.log.acknowledge(harness.partition(group), [e.entry_id for e in batch])
    rest = await harness.log.pending(harness.partition(group), "persister-1", 2, 1.0)
    assert [e.row["seq"] for e in rest] == [3]
    await harness.log.acknowledge(harness.partition(group), [e.entry_id for e in rest])


async def test_pending_with_nothing_logged_returns_empty_after_waiting(harness: Harness) -> None:
    """An idle persister waits about ``block_s`` and gets an empty batch."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await harness.log.pending(0, "persister-1", 10, 0.2) == []
    assert 0.15 <= loop.time() - started < 2.0


async def test_acknowledge_works_while_a_cluster_client_reloads_its_slot_map(
    redis_only: Harness,
) -> None:
    """After a failover the client must reload its map first; acknowledging still completes.

    redis-py's cluster transactions (MULTI) reload it from a thread with an event loop of its
    own and deadlock the node's loop: a CI run hung for ten minutes in the failover test
    there. So no transaction is used, on any backend.
    """
    group, author = ids(2)
    harness = redis_only
    await harness.log.append(new_message(group, author), GENEROUS)
    entries = await harness.log.pending(harness.partition(group), "persister-1", 10, 1.0)
    assert harness.client is not None
    multi_before = await _multi_calls(harness.client)
    if isinstance(harness.client, RedisCluster):
        harness.client._initialize = True  # what a connection error during a failover sets
    await asyncio.wait_for(
        harness.log.acknowledge(harness.partition(group), [e.entry_id for e in entries]), 10
    )
    assert await harness.log.pending(harness.partition(group), "persister-1", 10, 0.1) == []
    assert await _multi_calls(harness.client) == multi_before


async def _multi_calls(client: RedisClient) -> int:
    """``MULTI`` calls served so far, over every primary."""
    targets = {"target_nodes": RedisCluster.PRIMARIES} if isinstance(client, RedisCluster) else {}
    stats: Any = await client.info("commandstats", **targets)
    per_node = stats.values() if isinstance(client, RedisCluster) else [stats]
    return sum(int(s.get("cmdstat_multi", {}).get("calls", 0)) for s in per_node)


async def test_acknowledge_of_nothing_is_harmless(harness: Harness) -> None:
    """An empty acknowledgement changes nothing."""
    group, author = ids(2)
    await harness.log.append(new_message(group, author), GENEROUS)
    await harness.log.acknowledge(harness.partition(group), [])
    assert (await harness.log.lag())[0] == 1


async def test_lag_counts_unpersisted_messages(harness: Harness) -> None:
    """Logged but not yet persisted messages are reported as lag."""
    group, author = ids(2)
    assert await harness.log.lag() == (0, 0.0)
    for _ in range(2):
        await harness.log.append(new_message(group, author), GENEROUS)
    count, age = await harness.log.lag()
    assert count == 2
    assert 0.0 <= age < 5.0


# --- erasure -----------------------------------------------------------------------------


def erased_at() -> datetime:
    """A deletion time at millisecond precision (what the Redis streams keep)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def test_a_revised_frame_replaces_the_old_one_in_the_window(harness: Harness) -> None:
    """An edit's frame takes the message's place in replays; seqs and times stay; gone: False."""
    group, author = ids(2)
    messages = [new_message(group, author, body=f"draft {n}") for n in range(3)]
    for message in messages:
        await harness.log.append(message, GENEROUS)
    before = await harness.log.recent(group, 0, 10)
    edited = tombstone(group, messages[1].message_id, 2)

    assert await harness.log.revise(group, 2, edited) is True
    assert await harness.log.revise(group, 9, edited) is False

    after = await harness.log.recent(group, 0, 10)
    assert [r.frame for r in after] == [before[0].frame, edited, before[2].frame]
    assert [(r.seq, r.created_ms) for r in after] == [(r.seq, r.created_ms) for r in before]


async def test_with_replica_acks_window_rewrites_wait_for_the_replicas(
    request: pytest.FixtureRequest, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``REDIS_MIN_REPLICAS_ACK``: an edit's or an erasure's rewrite is on N replicas, or not.

    A failover to a replica that missed a rewrite would bring the old text, or an erased
    author's frames, back into replays. The local cluster has one replica per primary: with
    N=1 the replica holds each rewrite when it returns; N=2 cannot be met, so an edit's
    rewrite is refused and an erasure's is logged and not counted (the erasure goes on).
    """
    one = await cluster_harness(request, prefix, 1)
    assert one.client is not None
    two = replace(one, log=redis_log(one.client, one.partitions, one.floors, 2), cleanup=None)
    try:
        group, author, other = ids(3)
        mine, theirs = new_message(group, author, body="said by mistake"), new_message(group, other)
        for message in (mine, theirs):
            await one.log.append(message, GENEROUS)
        deleted = tombstone(group, theirs.message_id, 2)
        assert await one.log.revise(group, 2, deleted) is True
        assert (await _replica_window(one, group))[1] == deleted
        with pytest.raises(ServiceUnavailable, match="replicas"):
            await two.log.revise(group, 2, deleted)

        assert await one.log.erase_author(author, [group], erased_at()) == 1
        assert await _replica_window(one, group) == [tombstone(group, mine.message_id, 1), deleted]
        assert "may come back" not in caplog.text
        assert await two.log.erase_author(other, [group], erased_at()) == 0  # not confirmed
        assert "an erased author's frames may come back after a Redis failover" in caplog.text
    finally:
        await one.bus.stop()
        assert one.cleanup is not None
        await one.cleanup()


async def _replica_window(harness: Harness, group_id: uuid.UUID) -> list[bytes]:
    """The frames of a group's recovery window as the replica of its primary holds them."""
    cluster = harness.client
    assert isinstance(cluster, RedisCluster)
    key = harness.partitions.owned(group_id, f"rec:{group_id}")
    replica = cluster.nodes_manager.slots_cache[cluster.keyslot(key)][1]
    client = Redis(host=replica.host, port=int(replica.port))
    try:
        await client.readonly()
        entries: Any = await client.xrange(key)
    finally:
        await client.aclose()
    return [fields[b"f"] for _id, fields in entries]


async def test_erasing_an_author_leaves_tombstones_in_the_window(harness: Harness) -> None:
    """The author's frames become ``message_deleted`` tombstones; others' stay; seqs go on."""
    group, author, other = ids(3)
    mine = [new_message(group, author, "c-1"), new_message(group, author, "c-2")]
    theirs = new_message(group, other)
    for message in (mine[0], theirs, mine[1]):
        await harness.log.append(message, GENEROUS)
    before = await harness.log.recent(group, 0, 10)

    assert await harness.log.erase_author(author, [group], erased_at()) == 2

    after = await harness.log.recent(group, 0, 10)
    assert [r.frame for r in after] == [
        tombstone(group, mine[0].message_id, 1),
        before[1].frame,
        tombstone(group, mine[1].message_id, 3),
    ]
    assert [(r.seq, r.created_ms) for r in after] == [(r.seq, r.created_ms) for r in before]
    again = await harness.log.append(new_message(group, author, "c-1"), GENEROUS)
    assert (again.seq, again.duplicate) == (4, False)  # the idempotency record is gone
    assert await harness.log.erase_author(other, [group], erased_at()) == 1
    assert await harness.log.erase_author(uuid.uuid4(), [group, uuid.uuid4()], erased_at()) == 0


async def test_erasing_an_author_turns_queued_rows_into_tombstone_rows(harness: Harness) -> None:
    """Rows waiting for the persister, read or not, come back with no author and no text."""
    group, elsewhere, author, other = ids(4)
    read, unread, theirs = (
        new_message(group, author),
        new_message(elsewhere, author),
        new_message(group, other),
    )
    await harness.log.append(read, GENEROUS)
    taken = await harness.log.pending(harness.partition(group), "persister-1", 10, 1.0)
    await harness.log.append(unread, GENEROUS)
    await harness.log.append(theirs, GENEROUS)
    when = erased_at()

    # the group left earlier is found through the queued row
    assert await harness.log.erase_author(author, [], when) == 2

    rows: list[dict[str, object]] = []
    for partition in {harness.partition(group), harness.partition(elsewhere)}:
        for own in (True, False):
            entries = await harness.log.pending(partition, "persister-1", 10, 0.1, own=own)
            rows += [e.row for e in entries if e.row not in rows]
            await harness.log.acknowledge(partition, [e.entry_id for e in entries])
    assert [e.row for e in taken] == [read.row(1)]
    by_id = {row["id"]: row for row in rows}
    assert by_id[read.message_id] == tombstone_row(read.row(1), when)
    assert by_id[unread.message_id] == tombstone_row(unread.row(1), when)
    assert by_id[theirs.message_id] == theirs.row(2)
    assert (await harness.log.lag())[0] == 0


# --- Redis only --------------------------------------------------------------------------


async def test_erasure_reads_a_long_persistence_stream_in_batches(
    redis_only: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More queued entries than one script looks at: every one of the author's is found."""
    monkeypatch.setattr(redis_erasure, "SCAN_BATCH", 2)
    group, author = ids(2)
    messages = [new_message(group, author) for _ in range(5)]
    for message in messages:
        await redis_only.log.append(message, GENEROUS)
    when = erased_at()
    assert await redis_only.log.erase_author(author, [], when) == 5
    entries = await redis_only.log.pending(redis_only.partition(group), "p", 10, 0.1)
    assert sorted((e.row for e in entries), key=lambda row: row["seq"]) == [
        tombstone_row(m.row(i + 1), when) for i, m in enumerate(messages)
    ]


async def test_own_unacknowledged_entries_are_delivered_again(redis_only: Harness) -> None:
    """A persister that failed before acking gets its entries again first."""
    group, author = ids(2)
    partition = redis_only.partition(group)
    for _ in range(2):
        await redis_only.log.append(new_message(group, author), GENEROUS)
    first = await redis_only.log.pending(partition, "persister-1", 10, 0.5)
    again = await redis_only.log.pending(partition, "persister-1", 10, 0.5)
    assert [e.entry_id for e in again] == [e.entry_id for e in first]
    assert [e.row["seq"] for e in again] == [1, 2]
    assert await redis_only.log.pending(partition, "persister-1", 10, 0.1, own=False) == []


async def test_a_new_lease_holder_adopts_what_the_last_one_left(redis_only: Harness) -> None:
    """Entries a dead node's persister took but never acked go to the partition's next holder."""
    assert redis_only.client is not None
    other_node = redis_log(
        redis_only.client, redis_only.partitions, redis_only.floors, redis_only.min_replicas
    )
    group, author = ids(2)
    partition = redis_only.partition(group)
    messages = [new_message(group, author) for _ in range(2)]
    for message in messages:
        await redis_only.log.append(message, GENEROUS)
    taken = await redis_only.log.pending(partition, "dead", 10, 0.5)
    assert len(taken) == 2
    assert await other_node.pending(partition, "alive", 10, 0.1) == []
    assert (await other_node.lag())[0] == 2
    assert await other_node.adopt(partition, "alive") == 2
    assert await other_node.adopt(partition, "alive") == 2  # its own now: claimed again, harmless
    claimed = await other_node.pending(partition, "alive", 10, 0.1)
    assert [e.entry_id for e in claimed] == [e.entry_id for e in taken]
    assert [e.row for e in claimed] == [m.row(i + 1) for i, m in enumerate(messages)]
    await other_node.acknowledge(partition, [e.entry_id for e in claimed])
    assert await redis_only.log.lag() == (0, 0.0)
    assert await redis_only.log.pending(partition, "dead", 10, 0.1) == []


async def test_lag_sums_every_partition(redis_only: Harness) -> None:
    """Messages of groups in different partitions all count, and the oldest sets the age."""
    count = redis_only.partitions.count
    groups = [uuid.UUID(int=uuid.uuid4().int // count * count + p) for p in range(count)] * 2
    author = uuid.uuid4()
    for group in groups:
        await redis_only.log.append(new_message(group, author), GENEROUS)
    assert {redis_only.partition(g) for g in groups} == set(range(count))
    count, age = await redis_only.log.lag()
    assert count == len(groups)
    assert 0.0 <= age < 5.0


async def test_seq_is_seeded_once_then_kept_in_redis(redis_only: Harness) -> None:
    """After the first seed, Redis owns the counter: a changed seed no longer matters."""
    group, author = ids(2)
    redis_only.seeds[group] = 5
    assert (await redis_only.log.append(new_message(group, author), GENEROUS)).seq == 6
    redis_only.seeds[group] = 500
    assert (await redis_only.log.append(new_message(group, author), GENEROUS)).seq == 7
    assert await redis_only.log.last_seq(group) == 7


async def test_the_next_block_is_reserved_ahead_of_need(redis_only: Harness) -> None:
    """Half a block left: the next one is reserved in the background, before any send waits."""
    (group,) = ids(1)
    floors, log = redis_only.floors, redis_only.log

    async def append(count: int) -> list[int]:  # an author each: no rate limit in the way
        return [
            (await log.append(new_message(group, uuid.uuid4()), GENEROUS)).seq for _ in range(count)
        ]

    async def ceiling_reaches(value: int) -> None:
        for _ in range(200):  # the reservation runs beside the sends
            if floors.ceilings[group] == value:
                return
            await asyncio.sleep(0.01)
        assert floors.ceilings[group] == value

    seqs = await append(SEQ_BLOCK - RESERVE_AHEAD_AT - 1)
    await asyncio.sleep(0.1)
    assert floors.ceilings[group] == SEQ_BLOCK  # more than half a block left: not yet
    seqs += await append(1)
    await ceiling_reaches(2 * SEQ_BLOCK)
    seqs += await append(SEQ_BLOCK)
    assert seqs == list(range(1, SEQ_BLOCK + SEQ_BLOCK - RESERVE_AHEAD_AT + 1))
    await ceiling_reaches(3 * SEQ_BLOCK)  # and again, half a block before the second ends
