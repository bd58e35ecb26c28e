"""A lease in Redis: at most one holder at a time, which keeps it by renewing it.

The scheduler holds one so that, however many scheduler processes run, one acts (queues the
periodic jobs) and the others wait; each persistence partition has one (its holder drains
it, :mod:`server.realtime.leases`); a seq reservation holds its group's for a moment. When a
holder dies its lease expires and another takes over. One key, ``SET``-if-absent or
renew-if-mine in one script, so acquiring is atomic.
"""

from __future__ import annotations

import uuid

from server.redis_client import RedisClient

_HOLD = """
-- Take a lease if free, renew it if this holder has it.
-- KEYS: the lease. ARGV: holder, ttl_ms. Returns 1 if held now, 0 if another holds it.
local lease, holder, ttl_ms = KEYS[1], ARGV[1], ARGV[2]
local current = redis.call('GET', lease)
if not current then
  redis.call('SET', lease, holder, 'PX', ttl_ms)
  return 1
end
if current == holder then
  redis.call('PEXPIRE', lease, ttl_ms)
  return 1
end
return 0
"""
_RELEASE = """
-- Give a lease back only if this holder still has it.
-- KEYS: the lease. ARGV: holder. Returns 1 if released.
local lease, holder = KEYS[1], ARGV[1]
if redis.call('GET', lease) == holder then return redis.call('DEL', lease) end
return 0
"""


class RedisLease:
    """One named lease, held by ``owner`` while it renews within ``ttl_s``."""

    def __init__(
        self, redis: RedisClient, key: str, ttl_s: float, owner: str | None = None
    ) -> None:
        self._key = key
        self._ttl_ms = int(ttl_s * 1000)
        self.owner = owner or uuid.uuid4().hex
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; False if another holds it."""
        return bool(await self._hold(keys=[self._key], args=[self.owner, self._ttl_ms]))

    async def release(self) -> None:
        """Give the lease up (if it is still ours), so another holder takes over at once."""
        await self._release(keys=[self._key], args=[self.owner])
