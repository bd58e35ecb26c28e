"""Cross-node bookkeeping for sockets: per-user connection leases and per-group presence.

Both are leases that a node refreshes for its live sockets; a dead node stops refreshing,
so its entries expire (``WS_LEASE_TTL_S``, 30 s) and other nodes sweep them, announcing the
users offline. Redis implementations use Lua for atomicity and the Redis clock; the
in-process twins serve the embedded default.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis.asyncio import Redis


class Registry(Protocol):
    """Leases of live sockets and who is online where."""

    async def acquire(self, user_id: uuid.UUID, session_id: str, limit: int) -> bool:
        """Take one of the user's ``limit`` connection slots."""
        ...

    async def release(self, user_id: uuid.UUID, session_id: str) -> None:
        """Give a slot back."""
        ...

    async def join(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Mark a socket subscribed; True when it made the user online in the group."""
        ...

    async def leave(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Unmark a socket; True when the user has no socket left in the group."""
        ...

    async def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Users with a live subscribed socket in the group."""
        ...

    async def refresh(
        self,
        leases: Iterable[tuple[uuid.UUID, str]],
        presence: Iterable[tuple[uuid.UUID, uuid.UUID, str]],
    ) -> None:
        """Extend this node's leases: ``(user, session)`` and ``(group, user, session)``."""
        ...

    async def sweep(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Drop expired presence; return users who went offline (each reported once)."""
        ...


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
"""Lua: the Redis clock in ms (every node shares it)."""

_ACQUIRE = (
    """
-- Take one of a user's connection slots, atomically (expired leases are dropped first).
-- KEYS: the user's lease set (session -> expiry ms). ARGV: session, ttl_ms, limit.
-- Returns 1 (taken, or already held) or 0 (all slots in use).
local leases = KEYS[1]
local session, ttl_ms, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
"""
    + _NOW
    + """
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local known = redis.call('ZSCORE', leases, session)
if not known and redis.call('ZCARD', leases) >= limit then
  return 0
end
redis.call('ZADD', leases, now + ttl_ms, session)
redis.call('PEXPIRE', leases, ttl_ms)
return 1
"""
)

_JOIN = (
    """
-- Mark a socket subscribed to a group, atomically.
-- KEYS: the group's presence set ('user|session' -> expiry ms). ARGV: user, session, ttl_ms.
-- Returns 1 when it made the user online (no live entry of theirs before), else 0.
local presence = KEYS[1]
local user, session, ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
"""
    + _NOW
    + """
local prefix = user .. '|'
local had = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', presence, now, '+inf')) do
  if string.sub(m, 1, #prefix) == prefix then had = 1 break end
end
redis.call('ZADD', presence, now + ttl_ms, prefix .. session)
return 1 - had
"""
)

_LEAVE = (
    """
-- Unmark a socket, atomically.
-- KEYS: the group's presence set. ARGV: user, session.
-- Returns 1 when that was the user's last live socket in the group, else 0.
local presence = KEYS[1]
local user, session = ARGV[1], ARGV[2]
"""
    + _NOW
    + """
local prefix = user .. '|'
if redis.call('ZREM', presence, prefix .. session) == 0 then return 0 end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', presence, now, '+inf')) do
  if string.sub(m, 1, #prefix) == prefix then return 0 end
end
return 1
"""
)

_SWEEP = (
    """
-- Drop expired presence (a dead node's sockets), atomically, so that each user who went
-- offline is reported by exactly one sweeping node.
-- KEYS: the group's presence set. ARGV: none. Returns the users now offline.
local presence = KEYS[1]
"""
    + _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', presence, '-inf', '(' .. now)
if #expired == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', presence, '-inf', '(' .. now)
local live = {}
for _, m in ipairs(redis.call('ZRANGE', presence, 0, -1)) do
  live[string.match(m, '^[^|]+')] = true
end
local gone, seen = {}, {}
for _, m in ipairs(expired) do
  local user = string.match(m, '^[^|]+')
  if not live[user] and not seen[user] then seen[user] = true table.insert(gone, user) end
end
return gone
"""
)

_ONLINE = (
    """
-- Live presence entries of a group ('user|session'), read by the Redis clock.
-- KEYS: the group's presence set. ARGV: none.
local presence = KEYS[1]
"""
    + _NOW
    + """
return redis.call('ZRANGEBYSCORE', presence, now, '+inf')
"""
)


class RedisRegistry:
    """Leases and presence shared by every node."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        # presence entries expire one sweep interval early, so "offline" is announced in time
        self._presence_ttl_ms = max(int(ttl_s * 1000) - 5000, int(ttl_s * 500))
        self._acquire = redis.register_script(_ACQUIRE)
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._sweep = redis.register_script(_SWEEP)
        self._online = redis.register_script(_ONLINE)

    async def acquire(self, user_id: uuid.UUID, session_id: str, limit: int) -> bool:
        """Take a slot if fewer than ``limit`` live leases exist."""
        return bool(
            await self._acquire(keys=[self._conns(user_id)], args=[session_id, self._ttl_ms, limit])
        )

    async def release(self, user_id: uuid.UUID, session_id: str) -> None:
        """Drop the lease."""
        await self._redis.zrem(self._conns(user_id), session_id)

    async def join(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Add the socket; True if the user was not online in the group before."""
        args: list[str | int] = [str(user_id), session_id, self._presence_ttl_ms]
        return bool(await self._join(keys=[self._presence(group_id)], args=args))

    async def leave(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Remove the socket; True if that was the user's last one in the group."""
        return bool(
            await self._leave(keys=[self._presence(group_id)], args=[str(user_id), session_id])
        )

    async def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Distinct users with a live entry."""
        members: Any = await self._online(keys=[self._presence(group_id)])
        return _users(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def refresh(
        self,
        leases: Iterable[tuple[uuid.UUID, str]],
        presence: Iterable[tuple[uuid.UUID, uuid.UUID, str]],
    ) -> None:
        """Push expiries forward for this node's sockets, in one pipeline."""
        seconds, micros = await self._redis.time()  # the clock every Lua script uses
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        pipe = self._redis.pipeline(transaction=False)
        for user_id, session_id in leases:
            pipe.zadd(self._conns(user_id), {session_id: now_ms + self._ttl_ms}, xx=True)
            pipe.pexpire(self._conns(user_id), self._ttl_ms)
        for group_id, user_id, session_id in presence:
            member = f"{user_id}|{session_id}"
            pipe.zadd(self._presence(group_id), {member: now_ms + self._presence_ttl_ms}, xx=True)
        await pipe.execute()

    async def sweep(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Expire dead nodes' entries; report users now offline."""
        gone: Any = await self._sweep(keys=[self._presence(group_id)])
        return [uuid.UUID(g.decode() if isinstance(g, bytes) else str(g)) for g in gone]

    def _conns(self, user_id: uuid.UUID) -> str:
        return f"{self._prefix}conns:{user_id}"

    def _presence(self, group_id: uuid.UUID) -> str:
        return f"{self._prefix}pres:{group_id}"


class MemoryRegistry:
    """One process's leases and presence (nothing to expire: the process is the node)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._conns: dict[uuid.UUID, set[str]] = {}
        self._presence: dict[uuid.UUID, dict[str, uuid.UUID]] = {}

    async def acquire(self, user_id: uuid.UUID, session_id: str, limit: int) -> bool:
        """Take a slot if fewer than ``limit`` are held."""
        sessions = self._conns.setdefault(user_id, set())
        if session_id not in sessions and len(sessions) >= limit:
            return False
        sessions.add(session_id)
        return True

    async def release(self, user_id: uuid.UUID, session_id: str) -> None:
        """Drop the slot."""
        sessions = self._conns.get(user_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._conns[user_id]

    async def join(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Add the socket; True if it made the user online."""
        sockets = self._presence.setdefault(group_id, {})
        first = user_id not in sockets.values()
        sockets[session_id] = user_id
        return first

    async def leave(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Remove the socket; True if it was the user's last."""
        sockets = self._presence.get(group_id, {})
        if sockets.pop(session_id, None) is None:
            return False
        if not sockets:
            del self._presence[group_id]
        return user_id not in sockets.values()

    async def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Users with a subscribed socket."""
        return sorted(set(self._presence.get(group_id, {}).values()), key=str)

    async def refresh(
        self,
        leases: Iterable[tuple[uuid.UUID, str]],
        presence: Iterable[tuple[uuid.UUID, uuid.UUID, str]],
    ) -> None:
        """Nothing expires in process."""

    async def sweep(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Nothing expires in process."""
        return []


def _users(members: Iterable[str]) -> list[uuid.UUID]:
    seen: dict[str, None] = {}
    for member in members:
        seen.setdefault(member.split("|", 1)[0], None)
    return [uuid.UUID(user) for user in seen]
