"""Rate limiting by GCRA (generic cell rate algorithm).

Two implementations of one interface: :class:`RedisRateLimiter` (atomic Lua, clock from the
Redis server, so limits hold across nodes) and :class:`MemoryRateLimiter`, its in-process twin
for the embedded default and unit tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from server.redis_client import RedisClient
from server.redis_pipelining import PipelinedScript


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` requests per ``period_s`` seconds, bursting up to ``limit``."""

    limit: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"<limit>/<seconds>"``, e.g. ``"100/60"``.

        Raises:
            ValueError: malformed or non-positive.
        """
        limit, _, period = text.partition("/")
        rate = cls(int(limit), float(period or 60))
        if rate.limit < 1 or rate.period_s <= 0:
            raise ValueError(f"invalid rate {text!r}")
        return rate


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit, with what the ``X-RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """The rate-limit headers, plus ``Retry-After`` when refused."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter(Protocol):
    """Counts hits on named buckets."""

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Record one request on ``key``; say whether it is allowed."""
        ...


def _decide(tat_ms: float, now_ms: float, rate: Rate) -> tuple[Decision, float | None]:
    """GCRA step shared by both implementations; returns the decision and the new TAT."""
    period = rate.period_s * 1000
    interval = period / rate.limit
    new_tat = max(tat_ms, now_ms) + interval
    allow_at = new_tat - period
    if allow_at > now_ms:
        reset = math.ceil(max(tat_ms, now_ms) / 1000)
        retry = max(1, math.ceil((allow_at - now_ms) / 1000))
        return Decision(False, rate.limit, 0, reset, retry), None
    remaining = int((now_ms - allow_at) // interval)
    return Decision(True, rate.limit, remaining, math.ceil(new_tat / 1000), 0), new_tat


class MemoryRateLimiter:
    """In-process GCRA; exact for one process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Record one request on ``key``."""
        now = self._clock() * 1000
        self._prune(now)
        decision, new_tat = _decide(self._tat.get(key, now), now, rate)
        if new_tat is not None:
            self._tat[key] = new_tat
        return decision

    def forget(self, key: str) -> None:
        """Drop the state of ``key`` (its owner's account was erased)."""
        self._tat.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._tat) > 10_000:  # noqa: PLR2004 - bound memory; expired buckets are full
            self._tat = {k: v for k, v in self._tat.items() if v > now}


def gcra_lua(key: str, period_ms: str, limit: str) -> str:
    """Lua computing one GCRA step on the bucket named by the Lua variable ``key``.

    ``period_ms`` and ``limit`` name Lua variables too. Defines ``now``, ``period``, ``tat``,
    ``new_tat`` and ``allowed``; storing ``new_tat`` (when allowed) is left to the caller
    (:data:`GCRA_STORE`), so a script can refuse for other reasons first. Timed by the Redis
    clock, so every node shares it. Shared by the request limiter below and the message
    log's append script.
    """
    return f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber({period_ms})
local tat = tonumber(redis.call('GET', {key}) or now)
if tat < now then tat = now end
local new_tat = tat + period / tonumber({limit})
local allowed = new_tat - period <= now
"""


GCRA_STORE = "redis.call('SET', {key}, tostring(new_tat), 'PX', math.ceil(new_tat - now))"
"""Lua storing the step computed by :func:`gcra_lua` (format with the bucket variable)."""

_GCRA = (
    """
-- One request on a rate-limit bucket, atomically.
-- KEYS: the bucket (its theoretical arrival time, in ms). ARGV: period_ms, limit.
-- Returns {allowed (1) or refused (0), tat, now}: the caller derives the headers.
local bucket = KEYS[1]
local period_ms = ARGV[1]
local limit = ARGV[2]
"""
    + gcra_lua("bucket", "period_ms", "limit")
    + """
if not allowed then return {0, tostring(tat), tostring(now)} end
"""
    + GCRA_STORE.format(key="bucket")
    + """
return {1, tostring(tat), tostring(now)}
"""
)


class RedisRateLimiter:
    """GCRA in one Lua script: atomic, and timed by the Redis server's clock."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._script = PipelinedScript(redis, _GCRA)
        self._prefix = prefix + "rl:"

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Record one request on ``key``."""
        period_ms = rate.period_s * 1000
        _, tat, now = await self._script(keys=[self._prefix + key], args=[period_ms, rate.limit])
        decision, _ = _decide(float(tat), float(now), rate)
        return decision


def shared_limiter(redis: RedisClient | None, prefix: str) -> RateLimiter:
    """Limits shared by every node (Redis), or by this process on the embedded default."""
    return RedisRateLimiter(redis, prefix) if redis is not None else MemoryRateLimiter()
