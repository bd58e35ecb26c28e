"""Why we do not use broadcaster's Redis backend: each of its defects, reproduced on real Redis.

broadcaster 0.3.1 (``Broadcast("redis://...")``, ``broadcaster._backends.redis.RedisBackend``)
with redis-py 8. Every test here PASSES when the defect happens, so a broadcaster upgrade that
fixes one shows up as a failing test: then re-read ADR 0005.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from broadcaster import Broadcast, Event
from broadcaster._backends.redis import RedisBackend
from broadcaster._base import Subscriber
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.services import REDIS_URL

REDIS_SERVER = shutil.which("redis-server")
SILENCE_S = 1.0
"""How long we wait for a message that a working pub/sub delivers in milliseconds."""


def fresh_channel() -> str:
    """A channel nobody else uses."""
    return f"sbtest:broadcaster:{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[Broadcast]:
    """A connected ``Broadcast("redis://...")``, disconnected afterwards."""
    broadcast = Broadcast(url)
    await asyncio.wait_for(broadcast.connect(), 5)
    try:
        yield broadcast
    finally:
        await asyncio.wait_for(broadcast.disconnect(), 5)


def backend_of(broadcast: Broadcast) -> RedisBackend:
    """The Redis backend behind ``broadcast``."""
    backend = broadcast._backend
    assert isinstance(backend, RedisBackend)
    return backend


async def next_event(subscriber: Subscriber, timeout: float = SILENCE_S) -> Event | None:
    """The subscriber's next event, or None when nothing comes within ``timeout``."""
    try:
        return await asyncio.wait_for(subscriber.get(), timeout)
    except TimeoutError:
        return None


async def publish_raw(url: str, channel: str, payload: bytes) -> int:
    """Publish with a plain client; Redis answers how many connections it delivered to."""
    async with Redis.from_url(url) as client:
        return int(await client.publish(channel, payload))


async def numsub(url: str, channel: str) -> int:
    """How many connections Redis has subscribed to ``channel``."""
    async with Redis.from_url(url) as client:
        [(_, count)] = await client.pubsub_numsub(channel)
        return int(count)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


async def test_a_first_subscription_receives_nothing() -> None:
    """(a) The first subscription of a fresh Broadcast is deaf, though Redis delivered to it.

    ``RedisBackend.subscribe`` sets ``self._ready`` *before* awaiting ``PubSub.subscribe``.
    With redis-py 8 that await yields (sends go through ``asyncio.wait_for`` because
    ``socket_timeout`` now defaults to 5 s) before redis-py records the channel in
    ``PubSub.channels``. The woken ``_pubsub_listener`` calls ``PubSub.listen()``, which loops
    ``while self.subscribed`` -- still False -- so it returns at once; the listener then
    clears ``_ready`` and parks until some *other* subscribe sets it again. Until then the
    messages sit unread in the socket. For us: after a node boots, the first room a socket
    joins receives nothing until an unrelated room happens to be joined.
    """
    channel = fresh_channel()
    async with connected(REDIS_URL) as broadcast, broadcast.subscribe(channel) as first:
        backend = backend_of(broadcast)
        delivered_to = await publish_raw(REDIS_URL, channel, b"hello")
        received = await next_event(first)
        assert delivered_to == 1  # Redis did push it to broadcaster's pub/sub socket...
        assert received is None  # ...yet the subscriber got nothing
        assert backend._pubsub.subscribed  # subscribed on Redis,
        assert not backend._ready.is_set()  # but the listener cleared the flag and parked
        # The proof that it is the flag: an unrelated subscription wakes the listener up, and
        # the stale message finally comes out, a second after it was sent.
        async with broadcast.subscribe(fresh_channel()):
            assert await next_event(first) == Event(channel, "hello")


async def test_b_half_second_outage_hangs_subscribers_for_good(owned_redis: OwnRedis) -> None:
    """(b) Redis gone for 0.5 s: the listener dies silently and no subscriber ever hears again.

    ``RedisBackend._pubsub_listener`` iterates ``PubSub.listen()`` with no ``try``. When the
    connection drops, redis-py's ``PubSub._execute`` makes one reconnect attempt (a
    ``from_url`` client has ``Retry(retries=0)``), which fails while Redis is down, so
    ``ConnectionError`` escapes and kills the backend's task. Nothing awaits that task and
    nothing restarts it: ``Broadcast._listener`` keeps waiting on the backend queue forever,
    nobody re-subscribes on the restarted Redis, and every ``Subscriber.get()`` / ``async for``
    blocks for good with no error. (Its publishing client, also ``Retry(retries=0)``, fails
    the first publish after the restart on its stale pooled connection.) For us: any Redis
    blip or failover silently ends real-time delivery on every node until each process is
    restarted.
    """
    warm, channel = fresh_channel(), fresh_channel()
    async with (
        connected(owned_redis.url) as broadcast,
        broadcast.subscribe(warm),
        broadcast.subscribe(channel) as subscriber,
    ):
        await broadcast.publish(channel, "before")
        assert await next_event(subscriber) == Event(channel, "before")

        owned_redis.kill()
        await asyncio.sleep(0.5)
        await owned_redis.astart()
        await asyncio.sleep(2.0)  # ample time for any reconnect logic to run

        listener = backend_of(broadcast)._listener
        assert listener is not None and listener.done()  # the backend's reader is dead...
        assert isinstance(listener.exception(), RedisConnectionError)
        assert not broadcast._listener_task.done()  # ...and nobody is told
        assert await numsub(owned_redis.url, channel) == 0  # nobody re-subscribed
        with pytest.raises(RedisConnectionError):  # publishing fails once too: no retries
            await broadcast.publish(channel, "after, through broadcaster")
        assert await publish_raw(owned_redis.url, channel, b"after") == 0
        assert await next_event(subscriber, timeout=3.0) is None  # stuck for good


async def leave_all(contexts: list[AbstractAsyncContextManager[Subscriber]]) -> list[Exception]:
    """Leave every subscription; return what leaving raised."""
    failures: list[Exception] = []
    for context in contexts:
        try:
            await asyncio.wait_for(context.__aexit__(None, None, None), 5)
        except Exception as exc:
            failures.append(exc)
    return failures


async def test_c_concurrent_subscribes_to_a_new_channel_drop_subscribers() -> None:
    """(c) Five subscribe() calls at once to a new channel: one receives, four are dropped.

    ``Broadcast.subscribe`` checks ``if not self._subscribers.get(channel)``, then awaits
    ``backend.subscribe``, then *assigns* ``self._subscribers[channel] = {queue}``. Every
    concurrent caller passes the check before the first await returns, and each assignment
    overwrites the previous set, so only the last queue survives. The dropped subscribers
    never receive, and leaving raises ``KeyError`` from ``self._subscribers[channel].remove``.
    For us: when several sockets join a room at once (a class starting), most of them
    silently miss every message of that room.
    """
    warm, channel = fresh_channel(), fresh_channel()
    async with connected(REDIS_URL) as broadcast, broadcast.subscribe(warm):
        contexts = [broadcast.subscribe(channel) for _ in range(5)]
        subscribers = await asyncio.wait_for(
            asyncio.gather(*(context.__aenter__() for context in contexts)), 5
        )
        try:
            assert len(broadcast._subscribers[channel]) == 1  # four queues already lost
            await broadcast.publish(channel, "to everyone")
            events = await asyncio.gather(*(next_event(s) for s in subscribers))
            assert [event for event in events if event is not None] == [
                Event(channel, "to everyone")
            ]
            assert events.count(None) == 4
        finally:
            failures = await leave_all(contexts)
        assert len(failures) == 4
        assert all(isinstance(failure, KeyError) for failure in failures)


async def test_d_one_non_utf8_payload_kills_the_listener() -> None:
    """(d) One payload that is not UTF-8 kills the listener; every later message is lost.

    ``RedisBackend._pubsub_listener`` builds ``Event(message=message["data"].decode())``
    inside the task's only loop. the bytes ``FF FE`` raise ``UnicodeDecodeError``, the task
    dies unobserved, and the valid message right behind it -- and everything after, on every
    channel of the process -- never arrives, while Redis keeps counting the connection as a
    subscriber. For us: one client (or bug) publishing binary data takes down real-time
    delivery for the whole node; and our payloads are bytes (msgpack) by design.
    """
    warm, channel = fresh_channel(), fresh_channel()
    async with (
        connected(REDIS_URL) as broadcast,
        broadcast.subscribe(warm),
        broadcast.subscribe(channel) as subscriber,
    ):
        await broadcast.publish(channel, "first")
        assert await next_event(subscriber) == Event(channel, "first")

        await broadcast.publish(channel, b"\xff\xfe")
        await broadcast.publish(channel, "valid, right behind it")
        assert await next_event(subscriber) is None

        listener = backend_of(broadcast)._listener
        assert listener is not None and listener.done()
        assert isinstance(listener.exception(), UnicodeDecodeError)
        assert await publish_raw(REDIS_URL, channel, b"later") == 1  # still "subscribed"
        assert await next_event(subscriber) is None


async def wait_for_size(queue: asyncio.Queue[Event | None], size: int) -> None:
    """Wait until ``queue`` holds ``size`` items."""
    await eventually(lambda: queue.qsize() == size)


async def test_e_subscriber_queues_are_unbounded() -> None:
    """(e) A subscriber that stops reading: its queue has no bound and grows with every message.

    ``Broadcast.subscribe`` creates ``asyncio.Queue()`` (maxsize 0: unbounded) and takes no
    argument to bound it; ``RedisBackend`` buffers in another unbounded queue. The one
    ``Broadcast._listener`` does ``await queue.put(event)`` for every subscriber, so even a
    bounded queue would only trade memory growth for head-of-line blocking: one slow
    subscriber would stall every channel. For us: one stalled WebSocket client makes the
    node's memory grow until it is killed, and there is no hook to drop the slow consumer.
    """
    warm, channel = fresh_channel(), fresh_channel()
    async with (
        connected(REDIS_URL) as broadcast,
        broadcast.subscribe(warm),
        broadcast.subscribe(channel) as subscriber,
    ):
        queue = subscriber._queue
        assert queue.maxsize == 0
        assert backend_of(broadcast)._queue.maxsize == 0
        assert list(inspect.signature(Broadcast.subscribe).parameters) == ["self", "channel"]
        for batch in range(1, 4):
            for index in range(1000):
                await broadcast.publish(channel, f"{batch}:{index}")
            await wait_for_size(queue, batch * 1000)
        assert queue.qsize() == 3000
        assert not queue.full()
