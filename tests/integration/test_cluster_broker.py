"""The job queue on the local Redis Cluster: a dead worker's unacknowledged job is taken over."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from redis.asyncio import RedisCluster
from taskiq import AckableMessage, BrokerMessage

from scripts.redis_cluster import LocalCluster
from server.tasks.cluster_broker import ReclaimingStreamClusterBroker


def _broker(cluster: LocalCluster, prefix: str, consumer: str) -> ReclaimingStreamClusterBroker:
    return ReclaimingStreamClusterBroker(
        cluster.url,
        queue_name=f"{prefix}tasks",
        consumer_group_name=f"{prefix}workers",
        consumer_name=consumer,
        xread_block=100,
        idle_timeout_ms=300,
    )


async def _next(broker: ReclaimingStreamClusterBroker, timeout: float = 10) -> AckableMessage:
    messages = broker.listen()
    try:
        return await asyncio.wait_for(anext(messages), timeout)
    finally:
        await messages.aclose()


async def _pending(client: RedisCluster, prefix: str) -> Any:
    return await client.xpending(f"{prefix}tasks", f"{prefix}workers")


async def test_a_job_a_dead_worker_left_unacknowledged_is_reclaimed(
    redis_cluster: LocalCluster,
) -> None:
    """The dead worker read the job and never acked it; the live one runs it, once."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:{{jobs}}"
    dead, live = _broker(redis_cluster, prefix, "dead"), _broker(redis_cluster, prefix, "live")
    client = RedisCluster.from_url(redis_cluster.url)
    await dead.startup()
    await live.startup()
    try:
        job = BrokerMessage(task_id="t1", task_name="job", message=b"payload", labels={})
        await dead.kick(job)
        taken = await _next(dead)  # read, then the worker dies: no ack
        assert taken.data == b"payload"
        assert (await _pending(client, prefix))["pending"] == 1
        reclaimed = await _next(live)  # nothing new: found idle past 300 ms and claimed
        assert reclaimed.data == b"payload"
        await reclaimed.ack()  # type: ignore[misc]
        assert (await _pending(client, prefix))["pending"] == 0
        await dead.kick(BrokerMessage(task_id="t2", task_name="job", message=b"next", labels={}))
        fresh = await _next(live)  # new entries still come first, and only once
        assert fresh.data == b"next"
        await fresh.ack()  # type: ignore[misc]
        assert (await _pending(client, prefix))["pending"] == 0
    finally:
        await client.delete(f"{prefix}tasks")
        await client.aclose()
        await dead.shutdown()
        await live.shutdown()
