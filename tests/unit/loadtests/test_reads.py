"""The read benchmark's arithmetic and the SQL it explains."""

from __future__ import annotations

import random

from loadtests.reads import EXPORT_BUDGET_S, Result, explained, reads
from server.admin.seed_plan import SeedPlan

PLAN = SeedPlan(100, 10, messages=1000)


def test_quantiles_and_the_verdict() -> None:
    """Nearest-rank quantiles; a read passes when its budgeted quantile is under budget."""
    result = Result("r", [i / 1000 for i in range(1, 101)])
    assert result.at(0.5) == 0.051
    assert result.at(0.95) == 0.096
    assert not result.ok
    assert Result("r", [0.01] * 20).ok
    slow = Result("export", [1.0, 6.0], budget_s=EXPORT_BUDGET_S, quantile=1.0)
    assert not slow.ok and "MISSED" in slow.line() and "p100 < 5000 ms" in slow.line()


def test_every_read_asks_a_valid_path() -> None:
    """Requests name API paths; deep history stays inside the busy group."""
    rng = random.Random(1)
    for read in reads(PLAN):
        path, params = read.request(rng)
        assert path.startswith("/api/v1/")
        assert int(params.get("before_seq", "2")) <= PLAN.messages_in(0)


def test_the_explained_sql_covers_each_read() -> None:
    """Each read's SQL is built by the node's own code (history, search, groups, unread, export)."""
    statements = explained(PLAN)
    assert {"history, first page", "unread counts", "export: messages"} <= set(statements)
    assert "sb_search_text" in str(statements["message search: page"])
