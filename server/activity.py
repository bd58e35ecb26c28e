"""Daily active users: distinct users authenticated since midnight UTC, across every node.

Each node remembers whom it has already counted today, so a user costs one Redis write per
node per day (``PFADD`` into a HyperLogLog of the day); the metric reads ``PFCOUNT`` on
scrape. The in-process twin counts one node's users exactly.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from server.redis_client import RedisClient

log = logging.getLogger(__name__)
DAY_TTL_S = 2 * 86400


class DailyActive:
    """Counts distinct users per UTC day."""

    def __init__(
        self, redis: RedisClient | None, prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "dau:"
        self._clock = clock
        self._day = ""
        self._seen: set[uuid.UUID] = set()

    async def seen(self, user_id: uuid.UUID) -> None:
        """Count ``user_id`` as active today (cheap after the first time; never raises)."""
        day = self._today()
        if user_id in self._seen:
            return
        self._seen.add(user_id)
        if self._redis is None:
            return
        try:
            key = self._prefix + day
            await self._redis.pfadd(key, str(user_id))
            await self._redis.expire(key, DAY_TTL_S)
        except Exception as exc:  # a metric must never fail a request
            self._seen.discard(user_id)
            log.warning("could not count an active user", extra={"error": repr(exc)})

    async def count(self) -> int:
        """Distinct users active today (every node's, with Redis)."""
        day = self._today()
        if self._redis is None:
            return len(self._seen)
        return int(await self._redis.pfcount(self._prefix + day))

    def _today(self) -> str:
        day = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%d")
        if day != self._day:
            self._day, self._seen = day, set()
        return day
