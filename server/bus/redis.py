"""Our cross-node bus on ``redis.asyncio`` (broadcaster's Redis backend fails; ADR 0005).

Channels are grouped in partitions (:mod:`server.bus.partitions`); each partition has one
subscriber connection, a *shard*. On one Redis there is one partition, on plain
``SUBSCRIBE``; on Redis Cluster each partition's channels share a hash slot and its shard
uses sharded pub/sub (``SSUBSCRIBE``) at that slot's primary (ADR 0022).

A lock and a handler list per channel (so concurrent subscribes to one channel neither race
nor drop anyone); ``subscribe`` returns only once Redis has confirmed, so nothing published
afterwards can be missed; each shard's reconnect loop re-subscribes its channels (on a
cluster, at the slot's current owner: after a failover, or when a migrated slot's old owner
ends the subscription) and then signals a resync so the hub can recover by ``seq`` whatever
was published meanwhile. Payloads are bytes and never decoded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.aio import cancel_and_wait
from server.bus.base import BusUnavailable, Handler, Resync, dispatch
from server.bus.partitions import Partitions

log = logging.getLogger(__name__)
KEEPALIVE = "bus:keepalive"
CONFIRM_TIMEOUT_S = 3.0
MAX_BACKOFF_S = 2.0
SILENCE_LIMIT_S = 15.0
"""A connection with no traffic for this long is dead; it is pinged at a third of it."""

Route = Callable[[str], int]
"""The partition of a channel (a group's channel lives in the group's partition)."""


class SubscriptionLost(ConnectionError):
    """The server ended a subscription by itself (a cluster slot moved to another node)."""


class _Shard:
    """One partition's subscriber connection and the channels it carries."""

    def __init__(self, bus: RedisBus, partition: int) -> None:
        self.bus = bus
        self.partition = partition
        self.names: set[str] = set()
        """Physical channel names subscribed here (besides the keepalive)."""
        self.connected = asyncio.Event()
        self.ever_connected = False
        self.pubsub: PubSub | None = None
        self.pending: dict[str, list[asyncio.Future[None]]] = {}
        self.leaving: dict[str, int] = {}
        """Unsubscribes sent and not yet answered, per name: their answers are no loss."""
        self.task: asyncio.Task[None] | None = None
        self._client: Redis | None = None
        self._keepalive = bus.partitions.channel(partition, KEEPALIVE)

    def start(self) -> None:
        """Run the reader loop (it connects, and reconnects, by itself)."""
        self.task = asyncio.create_task(self._run(), name=f"redis-bus-{self.partition}")

    async def stop(self) -> None:
        """Stop reading and close the connection."""
        await cancel_and_wait([self.task])
        self.connected.clear()
        self._fail_pending()
        await self._close()

    async def confirm(self, name: str) -> None:
        """Subscribe ``name`` and wait until Redis confirms it.

        A shard still making its first connection is waited for (briefly); one that was
        connected and lost its connection refuses at once.
        """
        if not self.ever_connected and self.task is not None and not self.task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), CONFIRM_TIMEOUT_S)
        pubsub = self.pubsub
        if pubsub is None or not self.connected.is_set():
            raise BusUnavailable("the bus is not connected to Redis")
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(name, []).append(confirmed)
        try:
            await self._command(pubsub, "subscribe", name)
            await asyncio.wait_for(asyncio.shield(confirmed), CONFIRM_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            with contextlib.suppress(RedisError, OSError):
                await self._command(pubsub, "unsubscribe", name)
            raise BusUnavailable(f"cannot subscribe: {exc!r}") from exc
        finally:
            waiting = self.pending.get(name, [])
            if confirmed in waiting:
                waiting.remove(confirmed)

    async def drop(self, name: str) -> None:
        """Unsubscribe ``name`` (best effort: a dropped connection forgets it anyway)."""
        pubsub = self.pubsub
        if pubsub is not None and self.connected.is_set():
            self.leaving[name] = self.leaving.get(name, 0) + 1
            with contextlib.suppress(RedisError, OSError):
                await self._command(pubsub, "unsubscribe", name)

    async def _command(self, pubsub: PubSub, verb: str, *names: str) -> None:
        if self.bus.sharded:
            await (pubsub.ssubscribe if verb == "subscribe" else pubsub.sunsubscribe)(*names)
        else:
            await (pubsub.subscribe if verb == "subscribe" else pubsub.unsubscribe)(*names)

    async def _run(self) -> None:
        backoff, first = 0.1, True
        while True:
            try:
                pubsub = await self._connect(refresh=not first)
                if not first:
                    self.bus.signal_resync(self.names)
                first, backoff = False, 0.1
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus connection lost, reconnecting", extra={"error": repr(exc)})
            self.connected.clear()
            self._fail_pending()
            await self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _connect(self, *, refresh: bool) -> PubSub:
        """Subscribe every channel of the shard and wait until Redis has confirmed them all."""
        self._client = await self.bus.subscriber_client(self._keepalive, refresh=refresh)
        pubsub = self.pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        names = [self._keepalive, *self.names]
        unconfirmed = set(names)
        await self._command(pubsub, "subscribe", *names)
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while unconfirmed:
            if time.monotonic() > deadline:
                raise BusUnavailable("Redis did not confirm the subscriptions")
            message = await pubsub.get_message(timeout=0.5)
            if message is not None:
                if message["type"] in ("subscribe", "ssubscribe"):
                    unconfirmed.discard(_name(message["channel"]))
                self._handle(message)
        self.connected.set()
        self.ever_connected = True
        log.info("bus connected", extra={"channels": len(names), "partition": self.partition})
        return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        """Deliver messages; ping when idle, and give up on a connection that stays silent.

        An idle wait lasts a third of the silence limit: on a cluster a node has a subscriber
        per partition, and each wake of an idle one costs a node CPU for nothing.
        """
        silence = self.bus.silence_limit_s
        last_seen, pinged = time.monotonic(), False
        while True:
            message = await pubsub.get_message(timeout=silence / 3)
            now = time.monotonic()
            if message is not None:
                last_seen, pinged = now, False
                self._handle(message)
            elif now - last_seen >= silence:
                raise BusUnavailable("Redis stopped answering; reconnecting")
            elif now - last_seen >= silence / 3 and not pinged:
                await pubsub.ping()
                pinged = True

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":
            return
        name = _name(message["channel"])
        if kind in ("subscribe", "ssubscribe"):
            for future in self.pending.pop(name, []):
                if not future.done():
                    future.set_result(None)
        elif kind == "sunsubscribe" and not self._answered_leave(name) and name in self.names:
            raise SubscriptionLost(f"the server ended the subscription of {name}")
        elif kind in ("message", "smessage"):
            self.bus.deliver(name, message["data"])

    def _answered_leave(self, name: str) -> bool:
        """Whether an unsubscribe answer is for one of ours (a quick re-subscribe follows)."""
        left = self.leaving.get(name, 0)
        if left <= 1:
            self.leaving.pop(name, None)
        else:
            self.leaving[name] = left - 1
        return left > 0

    def _fail_pending(self) -> None:
        for futures in self.pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(BusUnavailable("the bus connection dropped"))
        self.pending.clear()

    async def _close(self) -> None:
        self.leaving.clear()  # a new connection hears no answer to the old one's commands
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


class RedisBus:
    """Pub/sub across nodes through one Redis, or sharded over a Redis Cluster."""

    def __init__(
        self,
        publisher: Redis | RedisCluster,
        url: str,
        prefix: str = "",
        *,
        partitions: Partitions | None = None,
        route: Route | None = None,
        silence_limit_s: float = SILENCE_LIMIT_S,
    ) -> None:
        self._publisher = publisher
        self.sharded = isinstance(publisher, RedisCluster)
        self.partitions = partitions or Partitions(prefix)
        self._route = route or (lambda _channel: 0)
        self.silence_limit_s = silence_limit_s
        self._url = url
        self._handlers: dict[str, list[Handler]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._physical: dict[str, str] = {}
        self._logical: dict[str, str] = {}
        self._shards: dict[int, _Shard] = {}
        self._resync: list[Resync] = []
        self._started = False

    @property
    def connected(self) -> bool:
        """Whether every shard's subscriber connection is up."""
        return self._started and all(s.connected.is_set() for s in self._shards.values())

    async def start(self) -> None:
        """Start the first shard's reader (the others start with their first channel)."""
        self._started = True
        shard = self._shard(0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shard.connected.wait(), CONFIRM_TIMEOUT_S)

    async def stop(self) -> None:
        """Stop every shard."""
        shards, self._shards = list(self._shards.values()), {}
        await asyncio.gather(*(shard.stop() for shard in shards))

    async def publish(self, channel: str, payload: bytes) -> None:
        """Publish through the shared client (which has its own retries)."""
        name = self._name_of(channel)
        if self.sharded:
            await self._publisher.spublish(name, payload)
        else:
            await self._publisher.publish(name, payload)

    async def publish_many(self, channels: list[str], payload: bytes) -> None:
        """Publish to several channels in one pipelined round trip (per cluster node)."""
        if not channels:
            return
        pipe: Any = self._publisher.pipeline(transaction=False)
        for channel in channels:
            if self.sharded:
                pipe.spublish(self._name_of(channel), payload)
            else:
                pipe.publish(self._name_of(channel), payload)
        await pipe.execute()

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Add a handler; the first one makes Redis subscribe and waits for confirmation.

        Raises:
            BusUnavailable: Redis is unreachable or did not confirm in time.
        """
        async with self._lock(channel):
            handlers = self._handlers.setdefault(channel, [])
            handlers.append(handler)
            if len(handlers) > 1:
                return
            shard, name = self._place(channel)
            try:
                await shard.confirm(name)
            except BaseException:
                handlers.remove(handler)
                if not handlers:
                    self._forget(channel)
                raise

    async def listen(self, channel: str, handler: Handler) -> None:
        """Add a handler now; Redis subscribes it now if connected, else on reconnecting."""
        try:
            await self.subscribe(channel, handler)
        except (BusUnavailable, RedisError, OSError):
            async with self._lock(channel):
                handlers = self._handlers.setdefault(channel, [])
                if handler not in handlers:
                    handlers.append(handler)
                self._place(channel)  # its shard subscribes it when (re)connecting

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Remove a handler; the last one makes Redis unsubscribe."""
        async with self._lock(channel):
            handlers = self._handlers.get(channel)
            if not handlers or handler not in handlers:
                return
            handlers.remove(handler)
            if handlers:
                return
            name = self._physical.get(channel)
            shard = self._shards.get(self._route(channel))
            self._forget(channel)
            if shard is not None and name is not None:
                await shard.drop(name)

    def on_resync(self, callback: Resync) -> None:
        """Register a callback run after every reconnect, with the channels it concerns."""
        self._resync.append(callback)

    @property
    def client_name(self) -> str:
        """The subscriber connections' name in ``CLIENT LIST``: the prefix, then ``bus``."""
        return "".join("_" if c.isspace() else c for c in self.partitions.prefix) + "bus"

    def channels(self) -> list[str]:
        """Channels this process is subscribed to."""
        return list(self._handlers)

    async def subscriber_client(self, any_channel: str, *, refresh: bool) -> Redis:
        """A connection for a shard: the Redis, or the primary of the channel's slot."""
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": 2,
            "socket_keepalive": True,
            "client_name": self.client_name,
        }
        publisher = self._publisher
        if not isinstance(publisher, RedisCluster):
            return Redis.from_url(self._url, **options)
        if refresh or not publisher.nodes_manager.slots_cache:  # first use: no slot map yet
            await publisher.nodes_manager.initialize()
        node = publisher.get_node_from_key(any_channel)
        if node is None:
            raise BusUnavailable(f"no primary serves the slot of {any_channel}")
        return Redis(host=node.host, port=int(node.port), **options)

    def deliver(self, name: str, payload: bytes) -> None:
        """A message arrived on physical channel ``name``."""
        channel = self._logical.get(name)
        if channel is not None:
            dispatch(self._handlers.get(channel, ()), channel, payload)

    def signal_resync(self, names: Iterable[str]) -> None:
        """A shard reconnected: messages on its channels (physical ``names``) may be missed.

        Only that shard's channels are named: on a cluster, a failover reconnects the shards
        of one primary, and the groups of the others lost nothing.
        """
        channels = frozenset(c for c in map(self._logical.get, names) if c is not None)
        for callback in self._resync:
            try:
                callback(channels)
            except Exception:
                log.exception("resync callback failed")

    def _name_of(self, channel: str) -> str:
        name = self._physical.get(channel)
        if name is None:
            name = self.partitions.channel(self._route(channel), channel)
        return name

    def _place(self, channel: str) -> tuple[_Shard, str]:
        """The shard carrying ``channel`` and its physical name (remembered)."""
        name = self._name_of(channel)
        self._physical[channel], self._logical[name] = name, channel
        shard = self._shard(self._route(channel))
        shard.names.add(name)
        return shard, name

    def _forget(self, channel: str) -> None:
        del self._handlers[channel]
        name = self._physical.pop(channel, None)
        if name is not None:
            self._logical.pop(name, None)
            shard = self._shards.get(self._route(channel))
            if shard is not None:
                shard.names.discard(name)

    def _shard(self, partition: int) -> _Shard:
        shard = self._shards.get(partition)
        if shard is None:
            shard = self._shards[partition] = _Shard(self, partition)
            if self._started:
                shard.start()
        return shard

    def _lock(self, channel: str) -> asyncio.Lock:
        return self._locks.setdefault(channel, asyncio.Lock())


def _name(channel: bytes | str) -> str:
    return channel.decode() if isinstance(channel, bytes) else str(channel)
