"""Single flight: identical concurrent calls run once; failures reach every caller."""

from __future__ import annotations

import asyncio

import pytest

from server.singleflight import SingleFlight


async def test_concurrent_calls_for_one_key_run_once() -> None:
    """Five callers of one key get one call's result; another key gets its own call."""
    flights: SingleFlight[str, int] = SingleFlight()
    calls: list[str] = []
    release = asyncio.Event()

    async def fetch(key: str) -> int:
        calls.append(key)
        await release.wait()
        return len(calls)

    tasks = [asyncio.create_task(flights.do("a", lambda: fetch("a"))) for _ in range(5)]
    other = asyncio.create_task(flights.do("b", lambda: fetch("b")))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == [2, 2, 2, 2, 2]
    assert await other == 2
    assert sorted(calls) == ["a", "b"]
    assert await flights.do("a", lambda: fetch("a")) == 3  # a later call runs again


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    """The shared call fails: each caller sees it; the next call tries again."""
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def broken() -> int:
        await release.wait()
        raise ConnectionError("down")

    tasks = [asyncio.create_task(flights.do("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)

    async def fine() -> int:
        return 7

    assert await flights.do("k", fine) == 7


async def test_a_cancelled_leader_fails_its_followers_not_the_loop() -> None:
    """The leader is cancelled: followers get an error, and the key is free again."""
    flights: SingleFlight[str, int] = SingleFlight()

    async def slow() -> int:
        await asyncio.sleep(10)
        return 1

    leader = asyncio.create_task(flights.do("k", slow))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flights.do("k", slow))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(RuntimeError):
        await follower
