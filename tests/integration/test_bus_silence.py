"""A bus connection that goes silent (no RST, no FIN) is noticed and replaced."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from redis.asyncio import Redis

from server.bus.redis import RedisBus
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.services import REDIS_URL


async def test_silent_connection_is_replaced_and_resync_signalled(own_prefix: str) -> None:
    """Frozen network: the bus gives up within its silence limit, reconnects, and resyncs."""
    target = urlsplit(REDIS_URL)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    publisher = Redis.from_url(REDIS_URL)
    bus = RedisBus(publisher, url, own_prefix, silence_limit_s=1.5)
    resynced = asyncio.Event()
    told: list[frozenset[str]] = []

    def resync(channels: frozenset[str]) -> None:
        told.append(channels)
        resynced.set()

    bus.on_resync(resync)
    received: list[bytes] = []
    try:
        await bus.start()
        await bus.subscribe("g:x", lambda _channel, payload: received.append(payload))
        proxy.freeze()
        for _ in range(100):
            if not bus.connected:
                break
            await asyncio.sleep(0.1)
        assert not bus.connected
        proxy.cut()
        proxy.freeze(False)
        proxy.restore()
        await asyncio.wait_for(resynced.wait(), 10)
        assert told == [frozenset({"g:x"})]
        await bus.publish("g:x", b"after")
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.1)
        assert received == [b"after"]
    finally:
        await bus.stop()
        await publisher.aclose()
        await proxy.stop()
