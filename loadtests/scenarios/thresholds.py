"""At the end of a run: gather the figures from Locust's statistics and judge them.

The rules are in ``loadtests/verdict.py``; this module only reads Locust's numbers, prints
the verdict, writes it (``--verdict-file``) and sets the process's exit status (1 when a
threshold is missed).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from loadtests.scenarios import flood
from loadtests.scenarios.chatter import run_tally
from loadtests.verdict import (
    DELIVERY,
    WS,
    Figures,
    as_json,
    checks,
    kind,
    passed,
    percentile,
    report,
)

logger = logging.getLogger(__name__)


def figures(stats: Any) -> Figures:
    """The run's figures from Locust's ``RequestStats``."""
    histograms: dict[str, Counter[int]] = {
        "read": Counter(),
        "write": Counter(),
        "auth": Counter(),
        "delivery": Counter(),
    }
    requests = errors = deliveries = 0
    for (name, request_type), entry in stats.entries.items():
        requests += entry.num_requests
        errors += entry.num_failures
        if (request_type, name) == (WS, DELIVERY):
            deliveries += entry.num_requests
        bucket = kind(request_type, name)
        if bucket is not None:
            histograms[bucket].update(entry.response_times)
    tally = run_tally()
    return Figures(
        requests=requests,
        errors=errors,
        read_p95_ms=percentile(histograms["read"], 0.95),
        write_p95_ms=percentile(histograms["write"], 0.95),
        delivery_p99_ms=percentile(histograms["delivery"], 0.99),
        auth_p95_ms=percentile(histograms["auth"], 0.95),
        deliveries=deliveries,
        lost=tally.lost,
        duplicated=tally.duplicated,
        out_of_order=tally.out_of_order,
        unrecovered=tally.unrecovered + tally.unexpected,
        flood_rounds=flood.ROUNDS["rounds"],
        flood_rounds_limited=flood.ROUNDS["limited"],
    )


def judge(environment: Any, **_kwargs: Any) -> None:
    """Locust's ``quitting`` hook: print and store the verdict, set the exit status."""
    measured = figures(environment.stats)
    results = checks(measured, getattr(environment.parsed_options, "latency_scale", 1.0))
    print("\n" + report(measured, results), flush=True)
    target = getattr(environment.parsed_options, "verdict_file", None)
    if target:
        Path(target).write_text(json.dumps(as_json(measured, results), indent=2) + "\n")
    environment.process_exit_code = 0 if passed(results) else 1
