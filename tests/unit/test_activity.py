"""Daily active users in process: distinct per UTC day."""

from __future__ import annotations

import uuid

from server.activity import DailyActive
from tests.fixtures.clock import FrozenClock

MIDNIGHT = 1_700_006_400.0  # 2023-11-15 00:00 UTC


async def test_a_user_counts_once_per_day() -> None:
    """Three sightings of two users are two active users."""
    clock = FrozenClock(MIDNIGHT + 60)
    active = DailyActive(None, "sb:", clock.time)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for user in (alice, bob, alice):
        await active.seen(user)
    assert await active.count() == 2


async def test_the_count_starts_again_at_midnight_utc() -> None:
    """Yesterday's users are not today's."""
    clock = FrozenClock(MIDNIGHT - 1)
    active = DailyActive(None, "sb:", clock.time)
    await active.seen(uuid.uuid4())
    clock.advance(2)
    assert await active.count() == 0
    await active.seen(uuid.uuid4())
    assert await active.count() == 1
