"""Our cross-node bus on ``redis.asyncio`` (broadcaster's Redis backend fails; ADR 0005).

One PubSub connection per process; a lock and a handler list per channel (so concurrent
subscribes to one channel neither race nor drop anyone); ``subscribe`` returns only once Redis
has confirmed, so nothing published afterwards can be missed; a reconnect loop re-subscribes
every local channel and then signals a resync so the hub can recover by ``seq`` whatever was
published while the connection was down. Payloads are bytes and never decoded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.bus.base import BusUnavailable, Handler, dispatch

log = logging.getLogger(__name__)
KEEPALIVE = "bus:keepalive"
CONFIRM_TIMEOUT_S = 3.0
MAX_BACKOFF_S = 2.0
SILENCE_LIMIT_S = 15.0
"""A connection with no traffic for this long is dead; it is pinged at a third of it."""


class RedisBus:
    """Pub/sub across nodes through one Redis."""

    def __init__(
        self, publisher: Redis, url: str, prefix: str, *, silence_limit_s: float = SILENCE_LIMIT_S
    ) -> None:
        self._publisher = publisher
        self._silence_limit = silence_limit_s
        self._url = url
        self._prefix = prefix
        self._handlers: dict[str, list[Handler]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, list[asyncio.Future[None]]] = {}
        self._resync: list[Callable[[], None]] = []
        self._pubsub: PubSub | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: Redis | None = None

    @property
    def connected(self) -> bool:
        """Whether the subscriber connection is up."""
        return self._connected.is_set()

    async def start(self) -> None:
        """Start the reader loop (it connects, and reconnects, by itself)."""
        self._client = Redis.from_url(
            self._url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2,
            socket_keepalive=True,
        )
        self._task = asyncio.create_task(self._run(), name="redis-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), CONFIRM_TIMEOUT_S)

    async def stop(self) -> None:
        """Stop reading and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._connected.clear()
        self._fail_pending()
        await self._close_pubsub()
        if self._client is not None:
            await self._client.aclose()

    async def publish(self, channel: str, payload: bytes) -> None:
        """Publish through the shared client (which has its own retries)."""
        await self._publisher.publish(self._prefix + channel, payload)

    async def publish_many(self, channels: list[str], payload: bytes) -> None:
        """Publish to several channels in one pipelined round trip."""
        if not channels:
            return
        pipe = self._publisher.pipeline(transaction=False)
        for channel in channels:
            pipe.publish(self._prefix + channel, payload)
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
            try:
                await self._confirm_subscription(channel)
            except BaseException:
                handlers.remove(handler)
                if not handlers:
                    del self._handlers[channel]
                raise

    async def listen(self, channel: str, handler: Handler) -> None:
        """Add a handler now; Redis subscribes it now if connected, else on reconnecting."""
        try:
            await self.subscribe(channel, handler)
        except (BusUnavailable, RedisError, OSError):
            async with self._lock(channel):
                handlers = self._handlers.setdefault(channel, [])
                if handler not in handlers:
                    handlers.append(handler)  # _connect subscribes every known channel

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        """Remove a handler; the last one makes Redis unsubscribe."""
        async with self._lock(channel):
            handlers = self._handlers.get(channel)
            if not handlers or handler not in handlers:
                return
            handlers.remove(handler)
            if handlers:
                return
            del self._handlers[channel]
            pubsub = self._pubsub
            if pubsub is not None and self.connected:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self._prefix + channel)

    def on_resync(self, callback: Callable[[], None]) -> None:
        """Register a callback run after every reconnect."""
        self._resync.append(callback)

    def channels(self) -> list[str]:
        """Channels this process is subscribed to."""
        return list(self._handlers)

    def _lock(self, channel: str) -> asyncio.Lock:
        return self._locks.setdefault(channel, asyncio.Lock())

    async def _confirm_subscription(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self.connected:
            raise BusUnavailable("the bus is not connected to Redis")
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(self._prefix + channel, []).append(confirmed)
        try:
            await pubsub.subscribe(self._prefix + channel)
            await asyncio.wait_for(asyncio.shield(confirmed), CONFIRM_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(self._prefix + channel)
            raise BusUnavailable(f"cannot subscribe: {exc!r}") from exc
        finally:
            waiting = self._pending.get(self._prefix + channel, [])
            if confirmed in waiting:
                waiting.remove(confirmed)

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        client = self._client
        if client is None:
            return
        while True:
            try:
                pubsub = await self._connect(client)
                if not first:
                    self._signal_resync()
                first, backoff = False, 0.1
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus connection lost, reconnecting", extra={"error": repr(exc)})
            self._connected.clear()
            self._fail_pending()
            await self._close_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _connect(self, client: Redis) -> PubSub:
        """Subscribe every local channel and wait until Redis has confirmed them all."""
        pubsub = self._pubsub = client.pubsub(ignore_subscribe_messages=False)
        names = [self._prefix + KEEPALIVE, *(self._prefix + c for c in self._handlers)]
        unconfirmed = set(names)
        await pubsub.subscribe(*names)
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while unconfirmed:
            if time.monotonic() > deadline:
                raise BusUnavailable("Redis did not confirm the subscriptions")
            message = await pubsub.get_message(timeout=0.5)
            if message is not None:
                if message["type"] == "subscribe":
                    unconfirmed.discard(_name(message["channel"]))
                self._handle(message)
        self._connected.set()
        log.info("bus connected", extra={"channels": len(names)})
        return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        """Deliver messages; ping when idle, and give up on a connection that stays silent."""
        last_seen, pinged = time.monotonic(), False
        while True:
            message = await pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if message is not None:
                last_seen, pinged = now, False
                self._handle(message)
            elif now - last_seen > self._silence_limit:
                raise BusUnavailable("Redis stopped answering; reconnecting")
            elif now - last_seen > self._silence_limit / 3 and not pinged:
                await pubsub.ping()
                pinged = True

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "pong":
            return
        name = _name(message["channel"])
        if message["type"] == "subscribe":
            for future in self._pending.pop(name, []):
                if not future.done():
                    future.set_result(None)
            return
        if message["type"] != "message":
            return
        channel = name.removeprefix(self._prefix)
        dispatch(self._handlers.get(channel, ()), channel, message["data"])

    def _signal_resync(self) -> None:
        for callback in self._resync:
            try:
                callback()
            except Exception:
                log.exception("resync callback failed")

    def _fail_pending(self) -> None:
        for futures in self._pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(BusUnavailable("the bus connection dropped"))
        self._pending.clear()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _name(channel: bytes | str) -> str:
    return channel.decode() if isinstance(channel, bytes) else str(channel)
