"""The in-process cache: TTL expiry on a fake clock and eviction when full."""

from __future__ import annotations

import pytest

from server.cache import MemoryCache
from tests.fixtures.clock import FrozenClock


@pytest.fixture
def clock() -> FrozenClock:
    """A clock the test moves by hand."""
    return FrozenClock(500.0)


@pytest.fixture
def cache(clock: FrozenClock) -> MemoryCache:
    """A small cache on the fake clock."""
    return MemoryCache(clock=clock.time, max_entries=3)


async def test_absent_key_is_none(cache: MemoryCache) -> None:
    """Nothing stored, nothing returned."""
    assert await cache.get("profile:1") is None


async def test_stored_value_is_returned_until_it_expires(
    cache: MemoryCache, clock: FrozenClock
) -> None:
    """A value lives for its TTL and is gone at exactly TTL seconds."""
    await cache.set("profile:1", b"jane", ttl_s=60)
    clock.advance(59.9)
    assert await cache.get("profile:1") == b"jane"
    clock.advance(0.1)
    assert await cache.get("profile:1") is None


async def test_expired_entry_stays_gone(cache: MemoryCache, clock: FrozenClock) -> None:
    """Reading an expired entry drops it; it does not come back."""
    await cache.set("k", b"v", ttl_s=1)
    clock.advance(5)
    assert await cache.get("k") is None
    assert await cache.get("k") is None


async def test_setting_again_replaces_value_and_ttl(cache: MemoryCache, clock: FrozenClock) -> None:
    """A second set overwrites the value and restarts the TTL."""
    await cache.set("k", b"old", ttl_s=10)
    clock.advance(8)
    await cache.set("k", b"new", ttl_s=10)
    clock.advance(8)
    assert await cache.get("k") == b"new"


async def test_delete_forgets_a_key(cache: MemoryCache) -> None:
    """Deleted keys read as absent; deleting twice is harmless."""
    await cache.set("k", b"v", ttl_s=60)
    await cache.delete("k")
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_oldest_entry_is_evicted_when_full(cache: MemoryCache) -> None:
    """The fourth key pushes out the first one stored."""
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), ttl_s=60)
    await cache.set("d", b"d", ttl_s=60)
    assert await cache.get("a") is None
    assert [await cache.get(key) for key in ("b", "c", "d")] == [b"b", b"c", b"d"]


async def test_overwriting_when_full_evicts_nothing(cache: MemoryCache) -> None:
    """Updating an existing key at capacity keeps every other entry."""
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), ttl_s=60)
    await cache.set("a", b"A", ttl_s=60)
    assert [await cache.get(key) for key in ("a", "b", "c")] == [b"A", b"b", b"c"]


async def test_default_clock_is_monotonic() -> None:
    """Without a fake clock a fresh entry is readable straight away."""
    cache = MemoryCache()
    await cache.set("k", b"v", ttl_s=60)
    assert await cache.get("k") == b"v"
