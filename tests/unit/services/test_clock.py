"""Time as a dependency: the wall clock and a frozen clock tests move by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from server.services.clock import Clock
from tests.fixtures.clock import FrozenClock


def test_wall_clock_follows_time() -> None:
    """Clock.time is the current epoch time."""
    before = time.time()
    now = Clock().time()
    assert before <= now <= time.time()


def test_wall_clock_now_is_aware_utc() -> None:
    """Clock.now is an aware UTC datetime close to the present."""
    now = Clock().now()
    assert now.tzinfo is UTC
    assert abs(now.timestamp() - time.time()) < 5


def test_frozen_clock_stands_still_until_advanced() -> None:
    """A frozen clock returns its start until told to move."""
    clock = FrozenClock(1_700_000_000.0)
    assert clock.time() == clock.time() == 1_700_000_000.0
    clock.advance(90.5)
    assert clock.time() == 1_700_000_090.5
    assert clock.now() == datetime(2023, 11, 14, 22, 14, 50, 500000, tzinfo=UTC)


def test_frozen_clock_starts_at_the_present_by_default() -> None:
    """Without a start time it freezes at the moment it was made."""
    before = time.time()
    clock = FrozenClock()
    assert before <= clock.time() <= time.time()


def test_frozen_clock_is_a_clock() -> None:
    """It can stand in wherever a Clock is expected."""
    assert isinstance(FrozenClock(0), Clock)
    assert FrozenClock(0).now() == datetime(1970, 1, 1, tzinfo=UTC)
