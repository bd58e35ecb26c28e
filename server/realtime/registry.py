"""Cross-node bookkeeping for sockets: per-user connection leases and per-group presence.

Both are leases that a node refreshes for its live sockets; a dead node stops refreshing,
so its entries expire (``WS_LEASE_TTL_S``, 30 s) and other nodes sweep them, announcing the
users offline. Redis implementations use Lua for atomicity and the Redis clock; the
in-process twins serve the embedded default. On a Redis Cluster a user's leases live in the
user's partition and a group's presence in the group's (:mod:`server.bus.partitions`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from server.bus.partitions import Partitions
from server.redis_client import RedisClient
from server.redis_pipelining import PipelinedScript

_Presence = tuple[uuid.UUID, uuid.UUID, str]
"""A presence entry: group, user, session."""


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

    async def claim_typing(
        self, group_id: uuid.UUID, user_id: uuid.UUID, interval_s: float
    ) -> bool:
        """True, at most once per ``interval_s`` per user and group over every node."""
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
-- Mark a socket subscribed to a group, atomically, in O(log n) of the group's size.
-- KEYS: the group's online users (user -> latest expiry ms), the user's live sessions there
-- (session -> expiry ms). ARGV: user, session, ttl_ms.
-- Returns 1 when it made the user online (no live session of theirs before), else 0.
local users, sessions = KEYS[1], KEYS[2]
local user, session, ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
"""
    + _NOW
    + """
redis.call('ZREMRANGEBYSCORE', sessions, '-inf', '(' .. now)
local had = redis.call('ZCARD', sessions) > 0
redis.call('ZADD', sessions, now + ttl_ms, session)
redis.call('PEXPIRE', sessions, 2 * ttl_ms)
redis.call('ZADD', users, 'GT', now + ttl_ms, user)
if had then return 0 end
return 1
"""
)

_LEAVE = (
    """
-- Unmark a socket, atomically.
-- KEYS: the group's online users, the user's sessions there. ARGV: user, session.
-- Returns 1 when that was the user's last live session in the group, else 0.
local users, sessions = KEYS[1], KEYS[2]
local user, session = ARGV[1], ARGV[2]
"""
    + _NOW
    + """
if redis.call('ZREM', sessions, session) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', sessions, '-inf', '(' .. now)
if redis.call('ZCARD', sessions) > 0 then return 0 end
redis.call('ZREM', users, user)
redis.call('DEL', sessions)
return 1
"""
)

_SWEEP = (
    """
-- Drop users whose every session expired (a dead node's sockets), atomically, so that each
-- is reported offline by exactly one sweeping node. A user's score is the latest expiry of
-- their sessions, so an expired score means no live session is left; the sessions' own key
-- expires by itself. KEYS: the group's online users. ARGV: none. Returns the users now offline.
local users = KEYS[1]
"""
    + _NOW
    + """
local gone = redis.call('ZRANGEBYSCORE', users, '-inf', '(' .. now)
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', users, '-inf', '(' .. now) end
return gone
"""
)

_ONLINE = (
    """
-- The users online in a group, by the Redis clock.
-- KEYS: the group's online users. ARGV: none.
local users = KEYS[1]
"""
    + _NOW
    + """
return redis.call('ZRANGEBYSCORE', users, now, '+inf')
"""
)


_REFRESH = (
    """
-- Push a batch of this node's lease and presence expiries forward (leases and sessions only
-- if still there: a socket that ended meanwhile is not brought back).
-- KEYS: each lease's set, then for each presence entry the user's sessions set and the
-- group's users set. ARGV: lease count, lease ttl_ms, presence ttl_ms, then a session per
-- lease, then a (user, session) pair per presence entry.
local leases, lease_ttl, presence_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
"""
    + _NOW
    + """
for i = 1, leases do
  redis.call('ZADD', KEYS[i], 'XX', now + lease_ttl, ARGV[3 + i])
  redis.call('PEXPIRE', KEYS[i], lease_ttl)
end
local k, a = leases + 1, 4 + leases
while k <= #KEYS do
  redis.call('ZADD', KEYS[k], 'XX', now + presence_ttl, ARGV[a + 1])
  redis.call('PEXPIRE', KEYS[k], 2 * presence_ttl)
  redis.call('ZADD', KEYS[k + 1], 'XX', 'GT', now + presence_ttl, ARGV[a])
  k, a = k + 2, a + 2
end
return 1
"""
)
REFRESH_BATCH = 250
MAX_TYPING_CLAIMS = 50_000
"""How many typing claims one process keeps before dropping the lapsed ones."""
"""Sockets refreshed per script call; the node's event loop runs other work in between."""


class RedisRegistry:
    """Leases and presence shared by every node."""

    def __init__(self, redis: RedisClient, partitions: Partitions, ttl_s: float) -> None:
        self._redis = redis
        self._partitions = partitions
        self._ttl_ms = int(ttl_s * 1000)
        # presence entries expire one sweep interval early, so "offline" is announced in time
        self._presence_ttl_ms = max(int(ttl_s * 1000) - 5000, int(ttl_s * 500))
        # a reconnect storm admits many sockets at once: their scripts share pipelines
        self._acquire = PipelinedScript(redis, _ACQUIRE)
        self._join = PipelinedScript(redis, _JOIN)
        self._leave = PipelinedScript(redis, _LEAVE)
        self._sweep = redis.register_script(_SWEEP)
        self._online = redis.register_script(_ONLINE)
        self._refresh = redis.register_script(_REFRESH)

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
        keys = [self._presence(group_id), self._sessions(group_id, user_id)]
        args: list[str | int] = [str(user_id), session_id, self._presence_ttl_ms]
        return bool(await self._join(keys=keys, args=args))

    async def leave(self, group_id: uuid.UUID, user_id: uuid.UUID, session_id: str) -> bool:
        """Remove the socket; True if that was the user's last one in the group."""
        keys = [self._presence(group_id), self._sessions(group_id, user_id)]
        return bool(await self._leave(keys=keys, args=[str(user_id), session_id]))

    async def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Users with a live session."""
        members: Any = await self._online(keys=[self._presence(group_id)])
        return [uuid.UUID(m.decode() if isinstance(m, bytes) else str(m)) for m in members]

    async def refresh(
        self,
        leases: Iterable[tuple[uuid.UUID, str]],
        presence: Iterable[tuple[uuid.UUID, uuid.UUID, str]],
    ) -> None:
        """Push expiries forward for this node's sockets, a batch per script call.

        Between batches the event loop runs, so a node with thousands of sockets never stalls
        its fan-out for the whole refresh. A batch holds keys of one partition (one hash slot
        on a cluster): leases go by user, presence by group.
        """
        by_partition: dict[int, tuple[list[tuple[uuid.UUID, str]], list[_Presence]]] = {}
        of = self._partitions.of
        for lease in leases:
            by_partition.setdefault(of(lease[0]), ([], []))[0].append(lease)
        for entry in presence:
            by_partition.setdefault(of(entry[0]), ([], []))[1].append(entry)
        for lease_list, presence_list in by_partition.values():
            await self._refresh_partition(lease_list, presence_list)

    async def _refresh_partition(
        self, lease_list: list[tuple[uuid.UUID, str]], presence_list: list[_Presence]
    ) -> None:
        for start in range(0, max(len(lease_list), len(presence_list)), REFRESH_BATCH):
            end = start + REFRESH_BATCH
            batch_leases, batch_presence = lease_list[start:end], presence_list[start:end]
            keys = [self._conns(user_id) for user_id, _ in batch_leases]
            args: list[str | int] = [len(batch_leases), self._ttl_ms, self._presence_ttl_ms]
            args += [session for _, session in batch_leases]
            for group_id, user_id, session_id in batch_presence:
                keys += [self._sessions(group_id, user_id), self._presence(group_id)]
                args += [str(user_id), session_id]
            await self._refresh(keys=keys, args=args)

    async def sweep(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Expire dead nodes' entries; report users now offline."""
        gone: Any = await self._sweep(keys=[self._presence(group_id)])
        return [uuid.UUID(g.decode() if isinstance(g, bytes) else str(g)) for g in gone]

    async def claim_typing(
        self, group_id: uuid.UUID, user_id: uuid.UUID, interval_s: float
    ) -> bool:
        """A key of the user's that lives ``interval_s``: whoever sets it announces."""
        key = self._partitions.owned(user_id, f"typing:{user_id}:{group_id}")
        return bool(await self._redis.set(key, b"1", nx=True, px=max(1, int(interval_s * 1000))))

    def _conns(self, user_id: uuid.UUID) -> str:
        return self._partitions.owned(user_id, f"conns:{user_id}")

    def _presence(self, group_id: uuid.UUID) -> str:
        return self._partitions.owned(group_id, f"pres:{group_id}")

    def _sessions(self, group_id: uuid.UUID, user_id: uuid.UUID) -> str:
        return self._partitions.owned(group_id, f"pres:{group_id}:{user_id}")


class MemoryRegistry:
    """One process's leases and presence (nothing to expire: the process is the node)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._conns: dict[uuid.UUID, set[str]] = {}
        self._presence: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
        self._typing: dict[tuple[uuid.UUID, uuid.UUID], float] = {}

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

    async def claim_typing(
        self, group_id: uuid.UUID, user_id: uuid.UUID, interval_s: float
    ) -> bool:
        """The last announcement per user and group, by this process's clock."""
        now, key = self._clock(), (group_id, user_id)
        if now - self._typing.get(key, float("-inf")) < interval_s:
            return False
        if len(self._typing) >= MAX_TYPING_CLAIMS:  # bounded: an old claim has lapsed anyway
            self._typing = {k: t for k, t in self._typing.items() if now - t < interval_s}
        self._typing[key] = now
        return True
