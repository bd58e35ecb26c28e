"""A lease in Redis: at most one holder at a time, which keeps it by renewing it.

The scheduler holds one so that, however many scheduler processes run, one acts (queues the
periodic jobs) and the others wait; when the holder dies its lease expires and another takes
over. One key, ``SET``-if-absent or renew-if-mine in one script, so acquiring is atomic.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

_HOLD = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """One named lease, held by this process's ``owner`` id while it renews within ``ttl_s``."""

    def __init__(self, redis: Redis, key: str, ttl_s: float, owner: str | None = None) -> None:
        self._redis = redis
        self._key = key
        self._ttl_ms = int(ttl_s * 1000)
        self.owner = owner or uuid.uuid4().hex

    async def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; False if another holds it."""
        held = await self._redis.eval(_HOLD, 1, self._key, self.owner, self._ttl_ms)
        return bool(held)

    async def release(self) -> None:
        """Give the lease up (if it is still ours), so another scheduler takes over at once."""
        await self._redis.eval(_RELEASE, 1, self._key, self.owner)
