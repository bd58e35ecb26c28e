"""taskiq's Redis Cluster stream broker, also taking over jobs a dead worker left behind.

taskiq-redis's one-Redis broker reclaims entries another consumer read and never
acknowledged (``XAUTOCLAIM`` after each read); its cluster broker does not, so a worker killed
in the middle of a job left that job pending for good. This one reads the same way and, after
every read (an empty one included), claims what has been pending longer than
``idle_timeout_ms``: the one-Redis broker's 10 minutes by default. The queue is one stream,
so one slot: ``XAUTOCLAIM`` is a single-node command. Two workers never take the same entry:
a claim resets its idle time. A job claimed twice (a worker that was slow, not dead) runs
twice; jobs are idempotent or guarded, as they already are against retries.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from taskiq import AckableMessage
from taskiq_redis import RedisStreamClusterBroker

IDLE_TIMEOUT_MS = 600_000
RECLAIM_BATCH = 100


class ReclaimingStreamClusterBroker(RedisStreamClusterBroker):
    """A cluster stream broker that reclaims a dead worker's unacknowledged jobs."""

    def __init__(self, url: str, *, idle_timeout_ms: int = IDLE_TIMEOUT_MS, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.idle_timeout_ms = idle_timeout_ms

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New entries of the queue, then those left pending too long by other consumers."""
        while True:
            fetched: Any = await self.redis.xreadgroup(
                self.consumer_group_name,
                self.consumer_name,
                {self.queue_name: ">"},
                block=self.block,
                noack=False,
            )
            for _stream, entries in fetched or []:
                for entry_id, fields in entries:
                    yield self._ackable(entry_id, fields)
            for entry_id, fields in await self._reclaim():
                yield self._ackable(entry_id, fields)

    async def _reclaim(self) -> list[tuple[Any, Any]]:
        """Claim entries idle for ``idle_timeout_ms``; entries deleted meanwhile are skipped."""
        claimed: Any = await self.redis.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout_ms,
            count=RECLAIM_BATCH,
        )
        return [(entry_id, fields) for entry_id, fields in claimed[1] if fields]

    def _ackable(self, entry_id: Any, fields: Any) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(id=entry_id, queue_name=self.queue_name)
        )
