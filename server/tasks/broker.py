"""The taskiq broker, built from settings by the app lifespan or the worker entry point."""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from server.settings import Settings


def build_broker(settings: Settings) -> AsyncBroker:
    """A Redis stream broker when ``REDIS_URL`` is set; otherwise tasks run in-process."""
    if settings.redis_url:
        return RedisStreamBroker(
            settings.redis_url,
            queue_name=f"{settings.redis_prefix}tasks",
            consumer_group_name=f"{settings.redis_prefix}workers",
            unacknowledged_lock_timeout=60,
        )
    return InMemoryBroker()
