"""GCRA rate limiting: parsing, decisions and headers, the memory limiter on a fake clock."""

from __future__ import annotations

import time

import pytest

from server.security.ratelimit import Decision, MemoryRateLimiter, Rate
from tests.fixtures.clock import FrozenClock

START = 1_000_000.0


@pytest.fixture
def clock() -> FrozenClock:
    """Time that only moves when the test says so."""
    return FrozenClock(START)


@pytest.fixture
def limiter(clock: FrozenClock) -> MemoryRateLimiter:
    """An in-memory limiter on the fake clock."""
    return MemoryRateLimiter(clock=clock.time)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/60", Rate(100, 60.0)),
        ("5/1", Rate(5, 1.0)),
        ("10/0.5", Rate(10, 0.5)),
        ("7", Rate(7, 60.0)),
        ("7/", Rate(7, 60.0)),
    ],
)
def test_rate_parse_accepts_limit_per_seconds(text: str, expected: Rate) -> None:
    """'<limit>/<seconds>' parses; a missing period means per minute."""
    assert Rate.parse(text) == expected


@pytest.mark.parametrize("text", ["0/60", "-1/60", "5/0", "5/-1"])
def test_rate_parse_refuses_non_positive_values(text: str) -> None:
    """A limit below 1 or a period of zero or less is refused, naming the input."""
    with pytest.raises(ValueError, match="invalid rate"):
        Rate.parse(text)


@pytest.mark.parametrize("text", ["", "abc", "5/x", "1.5/60", "/60"])
def test_rate_parse_refuses_malformed_text(text: str) -> None:
    """Text that is not numbers is a ValueError too."""
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_allowed_decision_headers_have_no_retry_after() -> None:
    """An allowed hit reports limit, remaining and reset only."""
    decision = Decision(True, 10, 7, 1_700_000_060, 0)
    assert decision.headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "1700000060",
    }


def test_refused_decision_headers_carry_retry_after() -> None:
    """A refused hit adds Retry-After."""
    decision = Decision(False, 10, 0, 1_700_000_060, 6)
    assert decision.headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1700000060",
        "Retry-After": "6",
    }


async def test_burst_is_allowed_with_remaining_counting_down(limiter: MemoryRateLimiter) -> None:
    """Three requests per minute: the first three pass with 2, 1, 0 left."""
    rate = Rate(3, 60)
    decisions = [await limiter.hit("login:1.2.3.4", rate) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.limit == 3 for d in decisions)
    assert decisions[0].retry_after == 0
    assert decisions[-1].reset_at == int(START) + 60


async def test_exhausted_burst_is_refused_with_retry_after(limiter: MemoryRateLimiter) -> None:
    """The fourth request in the same instant waits one emission interval (20 s)."""
    rate = Rate(3, 60)
    for _ in range(3):
        await limiter.hit("k", rate)
    refused = await limiter.hit("k", rate)
    assert refused.allowed is False
    assert refused.remaining == 0
    assert refused.retry_after == 20
    assert refused.reset_at == int(START) + 60
    assert refused.headers()["Retry-After"] == "20"


async def test_refused_hits_do_not_consume_capacity(
    limiter: MemoryRateLimiter, clock: FrozenClock
) -> None:
    """Hammering while refused does not push recovery further out."""
    rate = Rate(3, 60)
    for _ in range(3):
        await limiter.hit("k", rate)
    for _ in range(10):
        assert (await limiter.hit("k", rate)).allowed is False
    clock.advance(20)
    assert (await limiter.hit("k", rate)).allowed is True


async def test_retry_after_is_at_least_one_second(limiter: MemoryRateLimiter) -> None:
    """Even when the wait is a millisecond, Retry-After says 1 (never 0)."""
    rate = Rate(1000, 1)
    for _ in range(1000):
        assert (await limiter.hit("k", rate)).allowed is True
    refused = await limiter.hit("k", rate)
    assert refused.allowed is False
    assert refused.retry_after == 1


async def test_capacity_recovers_as_time_passes(
    limiter: MemoryRateLimiter, clock: FrozenClock
) -> None:
    """One interval later one request passes; a full period later the whole burst is back."""
    rate = Rate(3, 60)
    for _ in range(3):
        await limiter.hit("k", rate)
    clock.advance(19.9)
    assert (await limiter.hit("k", rate)).allowed is False
    clock.advance(0.1)
    again = await limiter.hit("k", rate)
    assert again.allowed is True
    assert again.remaining == 0
    clock.advance(60)
    assert (await limiter.hit("k", rate)).remaining == 2


async def test_keys_are_independent(limiter: MemoryRateLimiter) -> None:
    """Exhausting one bucket leaves another untouched."""
    rate = Rate(1, 60)
    assert (await limiter.hit("a", rate)).allowed is True
    assert (await limiter.hit("a", rate)).allowed is False
    assert (await limiter.hit("b", rate)).allowed is True


async def test_expired_buckets_are_pruned_past_ten_thousand_keys(
    limiter: MemoryRateLimiter, clock: FrozenClock
) -> None:
    """Memory stays bounded: full (expired) buckets are dropped, live ones are kept."""
    short, long = Rate(1, 1), Rate(1, 3600)
    for index in range(10_000):
        await limiter.hit(f"visitor:{index}", short)
    await limiter.hit("busy", long)
    await limiter.hit("another", long)
    assert len(limiter._tat) == 10_002  # the only way to observe the bound
    clock.advance(2)
    decision = await limiter.hit("busy", long)
    assert decision.allowed is False
    assert set(limiter._tat) == {"busy", "another"}


async def test_no_pruning_at_ten_thousand_keys_or_fewer(
    limiter: MemoryRateLimiter, clock: FrozenClock
) -> None:
    """Up to the bound, even expired buckets stay (pruning is only for memory)."""
    for index in range(10_000):
        await limiter.hit(f"visitor:{index}", Rate(1, 1))
    clock.advance(2)
    await limiter.hit("visitor:0", Rate(1, 1))
    assert len(limiter._tat) == 10_000


async def test_default_clock_is_wall_time() -> None:
    """Without a clock the limiter uses time.time and reports a plausible reset."""
    decision = await MemoryRateLimiter().hit("k", Rate(5, 60))
    assert decision.allowed is True
    assert time.time() < decision.reset_at <= time.time() + 61
