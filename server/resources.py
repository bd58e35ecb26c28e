"""Process resources (engine, Redis, bus, broker), opened and closed by the app lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from taskiq import AsyncBroker

from server.bus.base import Bus
from server.bus.memory import MemoryBus
from server.bus.redis import RedisBus
from server.redis_client import create_redis
from server.settings import Settings
from server.store.db import Database, create_database
from server.tasks.broker import build_broker


@dataclass(frozen=True, slots=True)
class Resources:
    """Connections and clients that outlive a request."""

    settings: Settings
    db: Database
    redis: Redis | None
    broker: AsyncBroker
    bus: Bus


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Create every resource; close them all, in reverse, on exit."""
    db = create_database(
        settings.database_url,
        pool_min=settings.db_pool_min,
        pool_max=settings.db_pool_max,
        echo=settings.db_echo,
    )
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    broker = build_broker(settings)
    bus: Bus = MemoryBus()
    if redis is not None and settings.redis_url:
        bus = RedisBus(redis, settings.redis_url, settings.redis_prefix)
    await bus.start()
    try:
        yield Resources(settings, db, redis, broker, bus)
    finally:
        await bus.stop()
        if redis is not None:
            await redis.aclose()
        await db.dispose()
