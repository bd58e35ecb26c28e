"""A small key-value cache with TTLs: Redis, or an in-process twin."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from server.redis_client import RedisClient


class Cache(Protocol):
    """Bytes by key, expiring."""

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...


class RedisCache:
    """Cache entries shared by every node."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "cache:"

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None."""
        value = await self._redis.get(self._prefix + key)
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store ``value`` for ``ttl_s`` seconds."""
        await self._redis.set(self._prefix + key, value, ex=ttl_s)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._redis.delete(self._prefix + key)


class MemoryCache:
    """Process-local cache for the embedded default."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store ``value`` for ``ttl_s`` seconds, evicting the oldest entry when full."""
        if len(self._entries) >= self._max and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (self._clock() + ttl_s, value)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)
