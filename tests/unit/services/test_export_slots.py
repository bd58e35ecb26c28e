"""One export per user at a time, and a few per node."""

from __future__ import annotations

import uuid

import pytest

from server.errors import RateLimited
from server.services.export_slots import RETRY_AFTER_S, ExportSlots


def test_one_export_per_user_and_a_few_per_node() -> None:
    """A user's second export, or one more than the node runs, waits; a finished one frees."""
    slots = ExportSlots(per_node=2)
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with slots.hold(alice):
        with pytest.raises(RateLimited, match="still running") as again:
            with slots.hold(alice):
                pass
        assert again.value.retry_after == RETRY_AFTER_S
        with slots.hold(bob), pytest.raises(RateLimited, match="Too many exports"):
            with slots.hold(carol):
                pass
        with slots.hold(carol):  # bob's ended
            pass
    with slots.hold(alice):  # alice's first ended
        pass


def test_a_node_always_runs_at_least_one() -> None:
    """A tiny pool still allows one export."""
    assert ExportSlots(per_node=0).per_node == 1
