"""The taskiq broker, built from settings by the app lifespan or the worker entry point."""

from __future__ import annotations

import logging

from redis.exceptions import RedisClusterException, RedisError
from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from server.settings import Settings
from server.tasks.cluster_broker import ReclaimingStreamClusterBroker
from server.tasks.middleware import RetryMiddleware

log = logging.getLogger(__name__)
FROM_THE_START = "0"
"""Where the workers' consumer group starts when whoever comes first creates it: at the
stream's start, not its end (taskiq's ``$``). A node started before Redis queues jobs before
any group exists; a group created at the end afterwards would never deliver them."""


def build_broker(settings: Settings) -> AsyncBroker:
    """A Redis stream broker when ``REDIS_URL`` is set; otherwise tasks run in-process.

    On a Redis Cluster the queue is one stream (one slot) through taskiq's cluster client,
    with the dead worker's jobs reclaimed as the one-Redis broker does
    (:mod:`server.tasks.cluster_broker`). Either way every job is retried with backoff and
    dead-lettered after its last attempt.
    """
    broker: AsyncBroker = InMemoryBroker()
    queue, group = f"{settings.redis_prefix}tasks", f"{settings.redis_prefix}workers"
    if settings.redis_url and settings.redis_cluster:
        broker = ReclaimingStreamClusterBroker(
            settings.redis_url,
            queue_name=queue,
            consumer_group_name=group,
            consumer_id=FROM_THE_START,
        )
    elif settings.redis_url:
        broker = RedisStreamBroker(
            settings.redis_url,
            queue_name=queue,
            consumer_group_name=group,
            consumer_id=FROM_THE_START,
            unacknowledged_lock_timeout=60,
        )
    return broker.with_middlewares(RetryMiddleware(settings.task_retry_base_s))


async def start_queueing(broker: AsyncBroker) -> None:
    """Start a serving node's side of the broker; a Redis out of reach is not fatal.

    A node only queues jobs. The broker's start-up ends by declaring the workers' consumer
    group, which each worker declares again when it starts; so a Redis that is down when the
    node starts (Redis coming up after the app, a failover in progress) leaves the node
    serving, readiness naming ``redis``, and jobs queued once Redis answers, instead of a
    process that exits before it could say so.
    """
    try:
        await broker.startup()
    except (RedisError, RedisClusterException, OSError) as exc:
        log.warning(
            "Redis is out of reach at start-up; jobs are queued once it answers",
            extra={"error": repr(exc)},
        )


async def drain(broker: InMemoryBroker) -> None:
    """Wait for the in-process jobs and the retries they queue, until none is left.

    ``wait_all`` awaits the jobs running when it is called; a retry that a failing one queues
    starts after it, and a short-lived process (``dlq replay``) would exit before it ran:
    neither done nor dead-lettered.
    """
    while broker._running_tasks:  # taskiq keeps no public view of them
        await broker.wait_all()
