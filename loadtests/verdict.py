"""Pass/fail of a load run: the thresholds, our tighter goals, and the figures they judge.

Plain Python (no Locust), so the rules are unit-tested on their own; the Locust hook
(``loadtests/scenarios/thresholds.py``) only gathers the figures from Locust's statistics.

Thresholds fail the run (non-zero exit): REST p95 < 200 ms for reads and < 500 ms for
writes (the auth endpoints judged apart from the other writes: their bcrypt hash costs
0.25-0.35 s of CPU by design), socket publish-to-delivery p99 < 100 ms, no errors (the 429s
the login flood check provokes are its success, not errors), no lost, duplicated or
out-of-order deliveries, and the flood check itself answered 429. Goals are reported beside
them and never fail a run: reads p95 < 50 ms, writes p95 < 150 ms, delivery p99 < 20 ms.

Latencies are judged over the steady state, once every user has been spawned and has
logged in and connected: the ramp-up is a burst of logins (bcrypt) that no real evening
has, and its figures are reported apart. Errors and delivery faults count over the whole
run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

FLOOD_TAG = "[flood]"
"""In the name of every request the login flood check makes."""
WS = "WS"
"""Locust request type of socket events."""
DELIVERY = "delivery"
"""Name of the publish-to-delivery event."""
AUTH_PATH = "/auth/"
READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Figures:
    """What a run measured. Latencies are None when nothing of that kind was measured."""

    requests: int
    errors: int
    read_p95_ms: float | None
    write_p95_ms: float | None
    delivery_p99_ms: float | None
    auth_p95_ms: float | None = None
    deliveries: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    unrecovered: int = 0
    flood_rounds: int = 0
    flood_rounds_limited: int = 0
    late: int = 0
    """Deliveries that came more than the grace period late (reported, not judged)."""
    flood_rounds_inconclusive: int = 0
    """Flood rounds too slow to exhaust the bucket (reported, not judged)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One figure against its threshold (and, for latencies, our goal)."""

    name: str
    value: float | None
    limit: float
    goal: float | None = None
    unit: str = ""
    at_most: bool = False
    """True: the limit is allowed (``<=``); False: strictly below (``<``)."""

    @property
    def ok(self) -> bool:
        """Within the threshold; a figure with no samples passes (n/a)."""
        if self.value is None:
            return True
        return self.value <= self.limit if self.at_most else self.value < self.limit

    @property
    def meets_goal(self) -> bool | None:
        """Within our goal; None when there is no goal or no sample."""
        if self.goal is None or self.value is None:
            return None
        return self.value < self.goal

    def line(self) -> str:
        """A printable line: verdict, figure, threshold, goal."""
        sign = "<=" if self.at_most else "<"
        value = "n/a" if self.value is None else f"{self.value:g}{self.unit}"
        text = f"{'PASS' if self.ok else 'FAIL'}  {self.name:<38} {value:>10}  (threshold {sign} "
        text += f"{self.limit:g}{self.unit}"
        if self.goal is not None:
            met = {True: "met", False: "missed", None: "n/a"}[self.meets_goal]
            text += f"; goal < {self.goal:g}{self.unit}: {met}"
        return text + ")"


def checks(figures: Figures, latency_scale: float = 1.0) -> list[Check]:
    """Every check of a run; ``latency_scale`` widens the latency thresholds (not the goals).

    A scale above 1 is for runs that check accounting, not speed: the test suite's, on a
    machine busy with other work.
    """
    scale = latency_scale
    flood = (
        None if figures.flood_rounds == 0 else figures.flood_rounds - figures.flood_rounds_limited
    )
    return [
        Check("empty run (1 if nothing was recorded)", int(figures.requests == 0), 0, at_most=True),
        Check("REST reads p95", figures.read_p95_ms, 200 * scale, 50, " ms"),
        Check("REST writes p95 (auth apart)", figures.write_p95_ms, 500 * scale, 150, " ms"),
        Check("REST auth writes p95 (bcrypt)", figures.auth_p95_ms, 500 * scale, None, " ms"),
        Check("socket delivery p99", figures.delivery_p99_ms, 100 * scale, 20, " ms"),
        Check("errors (flood 429s excepted)", figures.errors, 0, at_most=True),
        Check("lost deliveries", figures.lost, 0, at_most=True),
        Check("out-of-order deliveries", figures.out_of_order, 0, at_most=True),
        Check("duplicated deliveries", figures.duplicated, 0, at_most=True),
        Check("unrecovered after reconnect", figures.unrecovered, 0, at_most=True),
        Check("login flood rounds without a 429", flood, 0, at_most=True),
    ]


def passed(results: Iterable[Check]) -> bool:
    """True when every threshold holds."""
    return all(check.ok for check in results)


def report(figures: Figures, results: list[Check]) -> str:
    """The verdict as text: one line per check, then the overall verdict."""
    lines = [check.line() for check in results]
    lines.append(
        f"{figures.requests} requests/events, {figures.errors} errors, "
        f"{figures.deliveries} timed deliveries, {figures.late} messages over 5 s late, "
        f"{figures.flood_rounds_inconclusive} flood rounds too slow to tell"
    )
    lines.append("VERDICT: " + ("PASS" if passed(results) else "FAIL"))
    return "\n".join(lines)


def as_json(figures: Figures, results: list[Check]) -> dict[str, object]:
    """The verdict as JSON-ready data."""
    return {
        "passed": passed(results),
        "figures": asdict(figures),
        "checks": [
            {**asdict(check), "ok": check.ok, "meets_goal": check.meets_goal} for check in results
        ],
    }


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a ``{milliseconds: count}`` histogram (Locust's form)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))  # pragma: no cover - unreachable: seen reaches total


Histograms = Mapping[tuple[str, str], Mapping[int, int]]
"""``{(name, request type): {milliseconds: count}}``: Locust's entries."""


def latencies(histograms: Histograms) -> dict[str, float | None]:
    """Reads, writes and auth p95 and delivery p99 of a set of entries."""
    merged: dict[str, dict[int, int]] = {"read": {}, "write": {}, "auth": {}, "delivery": {}}
    for (name, request_type), histogram in histograms.items():
        bucket = kind(request_type, name)
        if bucket is None:
            continue
        for value, count in histogram.items():
            merged[bucket][value] = merged[bucket].get(value, 0) + count
    return {
        "read_p95_ms": percentile(merged["read"], 0.95),
        "write_p95_ms": percentile(merged["write"], 0.95),
        "auth_p95_ms": percentile(merged["auth"], 0.95),
        "delivery_p99_ms": percentile(merged["delivery"], 0.99),
    }


def kind(request_type: str, name: str) -> str | None:
    """Which threshold a Locust statistics entry counts toward: read, write, auth, delivery."""
    if FLOOD_TAG in name:
        return None
    if request_type == WS:
        return "delivery" if name == DELIVERY else None
    if request_type in READ_METHODS:
        return "read"
    if request_type in WRITE_METHODS:
        return "auth" if AUTH_PATH in name else "write"
    return None
