"""Two reference readings of the machine, printed next to every benchmark run.

The benchmark figures depend on the machine as much as on the code: the same commit gave a
fan-out p99 of 9-13 ms on one session's machine and 4-5 ms on another's. These readings do
not touch StudyBuddy's code, so they tell a slower code path from a slower machine:

- ``wakeup_cpu_us``: CPU time redis-py on uvloop spends per sequential Redis ``PING``. Almost
  all of it is the kernel waking the two processes, the cost every socket write and every
  Redis round trip of a node pays.
- ``python_loop_us``: a fixed pure-Python loop (dict and list work, like a fan-out's
  per-delivery bookkeeping), in microseconds per 1,000 iterations; the interpreter's speed.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from loadtests.cluster import REDIS_URL

PINGS = 3_000
LOOP_ROUNDS = 200


async def wakeup_cpu_us() -> float:
    """CPU microseconds per sequential Redis PING round trip (client side)."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
        started = time.process_time()
        for _ in range(PINGS):
            await redis.ping()
        return (time.process_time() - started) / PINGS * 1e6
    finally:
        await redis.aclose()


def python_loop_us() -> float:
    """Microseconds per 1,000 iterations of a fixed dict-and-list loop (best of 5)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(LOOP_ROUNDS):
            table: dict[int, list[int]] = {}
            for key in range(1_000):
                table.setdefault(key & 63, []).append(key)
        best = min(best, (time.perf_counter() - started) / LOOP_ROUNDS * 1e6)
    return best


async def readings() -> dict[str, float]:
    """Both readings, rounded for printing."""
    return {
        "wakeup_cpu_us": round(await wakeup_cpu_us(), 1),
        "python_loop_us": round(python_loop_us(), 1),
    }
