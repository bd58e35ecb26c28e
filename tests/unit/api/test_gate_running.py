"""A user's calls running at once on a node are bounded; anonymous calls are not counted."""

from __future__ import annotations

import uuid

import pytest

from server.api.gate import RUNNING_PER_USER, Gate, Rates
from server.errors import RateLimited
from server.security.ratelimit import MemoryRateLimiter, Rate
from server.security.tokens import Principal


async def _never(_token: str) -> Principal:
    raise AssertionError("not called")


def _gate() -> Gate:
    rate = Rate.parse("100/60")
    return Gate(MemoryRateLimiter(), Rates(rate, rate, rate), (), _never)


def _principal() -> Principal:
    return Principal(user_id=uuid.uuid4(), token_id="t", issued_at=0.0, expires_at=1e12)


def test_the_eleventh_running_call_of_a_user_is_refused_and_a_finished_one_frees_a_place() -> None:
    """Ten run; the eleventh is 429 at once; others and anonymous calls are not held back."""
    gate, alice, bob = _gate(), _principal(), _principal()
    held = [gate.running(alice) for _ in range(RUNNING_PER_USER)]
    for call in held:
        call.__enter__()
    with pytest.raises(RateLimited) as refused, gate.running(alice):
        pass
    assert refused.value.retry_after == 1
    with gate.running(bob), gate.running(None):
        pass
    held.pop().__exit__(None, None, None)
    with gate.running(alice):  # a place came free
        pass
    for call in held:
        call.__exit__(None, None, None)
    assert gate._running == {}
