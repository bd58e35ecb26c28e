"""A load run's verdict: thresholds fail it, goals are only reported."""

from __future__ import annotations

import json

import pytest

from loadtests.verdict import (
    Figures,
    as_json,
    checks,
    kind,
    latencies,
    passed,
    percentile,
    report,
)

HEALTHY = Figures(
    requests=1000,
    errors=0,
    read_p95_ms=40,
    write_p95_ms=120,
    delivery_p99_ms=12,
    auth_p95_ms=300,
    deliveries=500,
    flood_rounds=2,
    flood_rounds_limited=2,
)


def _with(**changes: object) -> Figures:
    values = {name: getattr(HEALTHY, name) for name in HEALTHY.__slots__}
    return Figures(**{**values, **changes})  # type: ignore[arg-type]


def test_a_healthy_run_passes_and_meets_the_goals() -> None:
    """Every threshold held and every goal was met."""
    results = checks(HEALTHY)
    assert passed(results)
    assert all(check.meets_goal in (True, None) for check in results)
    text = report(HEALTHY, results)
    assert text.endswith("VERDICT: PASS")
    assert "goal < 50 ms: met" in text


@pytest.mark.parametrize(
    "changes",
    [
        {"read_p95_ms": 200},
        {"write_p95_ms": 501},
        {"auth_p95_ms": 500},
        {"delivery_p99_ms": 100},
        {"errors": 1},
        {"lost": 1},
        {"out_of_order": 1},
        {"duplicated": 1},
        {"unrecovered": 3},
        {"flood_rounds_limited": 1},
        {"requests": 0},
    ],
    ids=str,
)
def test_each_threshold_fails_the_run(changes: dict[str, object]) -> None:
    """Any one threshold missed fails the whole run."""
    results = checks(_with(**changes))
    assert not passed(results)
    assert report(_with(**changes), results).endswith("VERDICT: FAIL")


def test_a_missed_goal_is_reported_but_passes() -> None:
    """Reads p95 of 120 ms: within the 200 ms threshold, beyond the 50 ms goal."""
    results = checks(_with(read_p95_ms=120))
    assert passed(results)
    assert "goal < 50 ms: missed" in report(HEALTHY, results)


def test_figures_without_samples_are_not_applicable() -> None:
    """A REST-only run has no deliveries and a run without the flooder no flood rounds."""
    figures = _with(delivery_p99_ms=None, flood_rounds=0, flood_rounds_limited=0)
    results = checks(figures)
    assert passed(results)
    assert "n/a" in report(figures, results)


def test_the_verdict_is_json_ready() -> None:
    """The JSON form carries the overall verdict, the figures and every check."""
    data = as_json(HEALTHY, checks(HEALTHY))
    assert json.loads(json.dumps(data))["passed"] is True
    assert data["figures"]["deliveries"] == 500  # type: ignore[index]


def test_percentiles_of_a_histogram() -> None:
    """Locust's {ms: count} form: p95 of 100 samples is the 95th smallest."""
    histogram = {5: 90, 30: 5, 400: 5}
    assert percentile(histogram, 0.95) == 30
    assert percentile(histogram, 0.96) == 400
    assert percentile(histogram, 0.5) == 5
    assert percentile({}, 0.95) is None


@pytest.mark.parametrize(
    ("request_type", "name", "expected"),
    [
        ("GET", "/api/v1/study-groups", "read"),
        ("POST", "/api/v1/auth/login", "auth"),
        ("POST", "/api/v1/study-groups/[id]/messages", "write"),
        ("PATCH", "/api/v1/users/me", "write"),
        ("POST", "/api/v1/auth/login [flood]", None),
        ("WS", "delivery", "delivery"),
        ("WS", "ack", None),
        ("OPTIONS", "/", None),
    ],
)
def test_entries_are_sorted_into_thresholds(
    request_type: str, name: str, expected: str | None
) -> None:
    """GETs are reads, other methods writes; flood requests and other socket events neither."""
    assert kind(request_type, name) == expected


def test_a_latency_scale_widens_thresholds_but_not_goals() -> None:
    """Reads p95 of 900 ms pass with the thresholds scaled by 5, and still miss the goal."""
    results = checks(_with(read_p95_ms=900), latency_scale=5)
    assert passed(results)
    assert "threshold < 1000 ms; goal < 50 ms: missed" in report(HEALTHY, results)


def test_latencies_merge_entries_by_kind() -> None:
    """Two read entries merge into one p95; flood and ack entries count toward nothing."""
    figures = latencies(
        {
            ("/api/v1/study-groups", "GET"): {10: 50},
            ("/api/v1/users/me", "GET"): {300: 50},
            ("/api/v1/auth/login [flood]", "POST"): {9000: 10},
            ("ack", "WS"): {900: 10},
            ("delivery", "WS"): {4: 99, 40: 1},
        }
    )
    assert figures == {
        "read_p95_ms": 300,
        "write_p95_ms": None,
        "auth_p95_ms": None,
        "delivery_p99_ms": 4,
    }
