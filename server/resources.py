"""Process resources (engine, Redis, bus, broker), opened and closed by the app lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from taskiq import AsyncBroker

from server.bus.base import Bus
from server.bus.memory import MemoryBus
from server.bus.partitions import Partitions
from server.bus.redis import RedisBus
from server.cache import MemoryCache, RedisCache
from server.realtime.envelope import channel_owner
from server.redis_client import RedisClient, create_redis
from server.settings import Settings
from server.store.db import Database, create_database
from server.tasks.broker import build_broker


@dataclass(frozen=True, slots=True)
class Resources:
    """Connections and clients that outlive a request."""

    settings: Settings
    db: Database
    redis: RedisClient | None
    broker: AsyncBroker
    bus: Bus
    partitions: Partitions
    """Where keys and channels live: one plain partition, or hash-tagged ones on a cluster."""


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Create every resource; close them all, in reverse, on exit."""
    url, cluster = settings.redis_url, settings.redis_cluster
    redis = create_redis(url, cluster=cluster) if url else None
    marks = RedisCache(redis, settings.redis_prefix) if redis is not None else MemoryCache()
    db = create_database(
        settings.database_url,
        pool_min=settings.db_pool_min,
        pool_max=settings.db_pool_max,
        echo=settings.db_echo,
        replica_urls=settings.database_replica_urls,
        marks=marks,
        max_lag_s=settings.database_replica_max_lag_s,
        wait_s=settings.database_replica_wait_s,
    )
    count = settings.redis_partitions if cluster else 1
    partitions = Partitions(settings.redis_prefix, count, sharded=cluster)
    broker = build_broker(settings)
    bus: Bus = MemoryBus()
    if redis is not None and url:
        bus = RedisBus(redis, url, partitions=partitions, route=channel_route(partitions))
    await bus.start()
    try:
        yield Resources(settings, db, redis, broker, bus, partitions)
    finally:
        await bus.stop()
        if redis is not None:
            await redis.aclose()
        await db.dispose()


def channel_route(partitions: Partitions) -> Callable[[str], int]:
    """A channel's partition: its group's or user's, or the first for node-wide channels."""

    def route(channel: str) -> int:
        owner = channel_owner(channel)
        return partitions.of(owner) if owner is not None else 0

    return route
