"""The taskiq broker, built from settings by the app lifespan or the worker entry point."""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker, RedisStreamClusterBroker

from server.settings import Settings


def build_broker(settings: Settings) -> AsyncBroker:
    """A Redis stream broker when ``REDIS_URL`` is set; otherwise tasks run in-process.

    On a Redis Cluster the queue is one stream (one slot) through taskiq's cluster client;
    that broker does not reclaim a dead worker's unacknowledged jobs (they stay pending),
    which the stalled-delivery sweep covers for webhooks.
    """
    if settings.redis_url and settings.redis_cluster:
        return RedisStreamClusterBroker(
            settings.redis_url,
            queue_name=f"{settings.redis_prefix}tasks",
            consumer_group_name=f"{settings.redis_prefix}workers",
        )
    if settings.redis_url:
        return RedisStreamBroker(
            settings.redis_url,
            queue_name=f"{settings.redis_prefix}tasks",
            consumer_group_name=f"{settings.redis_prefix}workers",
            unacknowledged_lock_timeout=60,
        )
    return InMemoryBroker()
