"""At the end of a run: gather the figures from Locust's statistics and judge them.

The rules are in ``loadtests/verdict.py``; this module only reads Locust's numbers, prints
the verdict, writes it (``--verdict-file``) and sets the process's exit status (1 when a
threshold is missed).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent

from loadtests.scenarios import flood
from loadtests.scenarios.base import ARRIVING
from loadtests.scenarios.chatter import run_tally
from loadtests.verdict import (
    DELIVERY,
    WS,
    Figures,
    as_json,
    checks,
    latencies,
    passed,
    report,
)

logger = logging.getLogger(__name__)
RAMP: dict[str, Any] = {}
"""The histograms when the last user was spawned, and when that was."""


def histograms(stats: Any) -> dict[tuple[str, str], Counter[int]]:
    """A copy of every entry's response-time histogram."""
    return {key: Counter(entry.response_times) for key, entry in stats.entries.items()}


def spawned(environment: Any, timeout: float = 120.0) -> None:
    """Every user is spawned: the ramp-up ends once the last has logged in and connected."""

    def settle() -> None:
        deadline = time.monotonic() + timeout
        while ARRIVING[0] > 0 and time.monotonic() < deadline:
            gevent.sleep(0.25)
        RAMP["histograms"] = histograms(environment.stats)
        RAMP["seconds"] = round(time.time() - environment.stats.total.start_time, 1)

    gevent.spawn(settle)


def figures(stats: Any, ramp: dict[tuple[str, str], Counter[int]] | None = None) -> Figures:
    """The run's figures from Locust's ``RequestStats``: latencies after ``ramp``."""
    final = histograms(stats)
    steady = (
        final if ramp is None else {key: final[key] - ramp.get(key, Counter()) for key in final}
    )
    requests = sum(entry.num_requests for entry in stats.entries.values())
    errors = sum(entry.num_failures for entry in stats.entries.values())
    delivery = stats.entries.get((DELIVERY, WS))
    tally = run_tally()
    return Figures(
        requests=requests,
        errors=errors,
        **latencies(steady),
        deliveries=delivery.num_requests if delivery is not None else 0,
        lost=tally.lost,
        duplicated=tally.duplicated,
        out_of_order=tally.out_of_order,
        unrecovered=tally.unrecovered + tally.unexpected,
        flood_rounds=flood.ROUNDS["rounds"],
        flood_rounds_limited=flood.ROUNDS["limited"],
        late=tally.late,
        flood_rounds_inconclusive=flood.ROUNDS["inconclusive"],
    )


def judge(environment: Any, **_kwargs: Any) -> None:
    """Locust's ``quitting`` hook: print and store the verdict, set the exit status."""
    ramp = RAMP.get("histograms")
    measured = figures(environment.stats, ramp)
    results = checks(measured, getattr(environment.parsed_options, "latency_scale", 1.0))
    verdict = as_json(measured, results)
    if ramp is not None:
        verdict["ramp"] = {"seconds": RAMP["seconds"], **latencies(ramp)}
        shown = ", ".join(f"{k.removesuffix('_ms')} {v} ms" for k, v in latencies(ramp).items())
        print(f"\nramp-up ({RAMP['seconds']} s, reported, not judged): {shown}")
    print("\n" + report(measured, results), flush=True)
    target = getattr(environment.parsed_options, "verdict_file", None)
    if target:
        Path(target).write_text(json.dumps(verdict, indent=2) + "\n")
    environment.process_exit_code = 0 if passed(results) else 1
