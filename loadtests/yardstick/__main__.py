"""StudyBuddy beside Go's centrifuge, one sitting: ``python -m loadtests.yardstick [scenario ...]``.

Each scenario of ``loadtests/fanout.py`` runs against both targets back to back, with the
same client code (``loadtests/lean_client.py``, one dialect each) and the same measures
(the node processes' CPU and memory from ``/proc``, publish-to-delivery at the client's
socket), then the figures are printed side by side with the ratio StudyBuddy / Go.
Rounds alternate which target goes first, so a machine that slows down during the
sitting does not always favour the same one.

The budgets of issue 11, for StudyBuddy (Go's centrifuge: 2 nodes, one Redis, bare fan-out,
no auth, no persistence; StudyBuddy: persistence, idempotency and rate limits on):

- ``fanout``: server CPU per delivery and p99 no higher than Go's in the same round;
- ``saturation`` (200,000 deliveries/s offered): delivered per second at least Go's, p99
  <= 50 ms;
- ``admission``: 2,000 authenticated sockets (667 users x 3) ready and subscribed to one
  group on 2 nodes in <= 3 s (Go's connect without auth);
- ``idle``: <= 22 KiB per idle authenticated socket.

Go's own run is checked too (nothing lost, in order): a yardstick that dropped messages
would flatter it. Exits non-zero when a budget or a check is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvloop

from loadtests.fanout import Figure, Outcome, admission, fanout, idle, saturation
from loadtests.machine import readings
from loadtests.targets import Centrifuge, StudyBuddy, Target

BUDGETS = {
    "saturation_p99_ms": 50.0,
    "admission_s": 3.0,
    "idle_kib_per_socket": 22.0,
}
SCENARIOS = ("fanout", "saturation", "admission", "idle")


@dataclass(frozen=True)
class Row:
    """One figure of one scenario, for both targets."""

    scenario: str
    label: str
    key: str

    def line(self, ours: dict[str, Any], go: dict[str, Any]) -> str:
        """StudyBuddy, Go, and StudyBuddy / Go."""
        a, b = float(ours.get(self.key, float("nan"))), float(go.get(self.key, float("nan")))
        ratio = f"{a / b:>9.2f}" if b else f"{'-':>9}"
        return f"{self.scenario:<11} {self.label:<30} {a:>12.2f} {b:>12.2f} {ratio}"


ROWS = {
    "fanout": [
        Row("fanout", "server CPU-s per 200k", "cpu_s_per_200k"),
        Row("fanout", "p99 publish-to-delivery ms", "p99_ms"),
        Row("fanout", "p50 publish-to-delivery ms", "p50_ms"),
        Row("fanout", "delivered", "delivered"),
        Row("fanout", "client CPU-s", "client_cpu_s"),
    ],
    "saturation": [
        Row("saturation", "delivered per second", "delivered_per_s"),
        Row("saturation", "p99 publish-to-delivery ms", "p99_ms"),
        Row("saturation", "server CPU-s per 200k", "cpu_s_per_200k"),
        Row("saturation", "messages sent (1,000/s offered)", "sent"),
    ],
    "admission": [
        Row("admission", "s until all subscribed", "admission_s"),
        Row("admission", "p50 s", "p50_s"),
        Row("admission", "sockets retried", "retried_sockets"),
        Row("admission", "server CPU-s", "server_cpu_s"),
    ],
    "idle": [
        Row("idle", "KiB per idle socket", "idle_kib_per_socket"),
        Row("idle", "sockets alive", "alive"),
    ],
}


def _lost(result: dict[str, Any]) -> float:
    return float(result["expected"] - result["delivered"])


def _traffic_checks(name: str, ours: dict[str, Any], go: dict[str, Any]) -> list[Figure]:
    """Nothing lost and nothing out of order, on either side."""
    return [
        Figure(f"{name}: lost deliveries", _lost(ours), 0),
        Figure(f"{name}: order and gaps (1 = ok)", float(ours["ordered_gapless"]), 1, False),
        Figure(f"{name}: [go] lost deliveries", _lost(go), 0),
        Figure(f"{name}: [go] order and gaps (1 = ok)", float(go["ordered_gapless"]), 1, False),
    ]


def budgets(scenario: str, ours: dict[str, Any], go: dict[str, Any]) -> list[Figure]:
    """Issue 11's budgets for StudyBuddy in one round; relative ones against Go's figure."""
    if scenario == "fanout":
        return [
            Figure("fanout CPU-s per 200k (<= Go's)", ours["cpu_s_per_200k"], go["cpu_s_per_200k"]),
            Figure("fanout p99 ms (<= Go's)", ours["p99_ms"], go["p99_ms"]),
            *_traffic_checks("fanout", ours, go),
        ]
    if scenario == "saturation":
        return [
            Figure(
                "saturation delivered/s (>= Go's)",
                ours["delivered_per_s"],
                go["delivered_per_s"],
                lower_is_better=False,
            ),
            Figure("saturation p99 ms", ours["p99_ms"], BUDGETS["saturation_p99_ms"]),
        ]
    if scenario == "admission":
        return [
            Figure("admission s, 2,000 sockets", ours["admission_s"], BUDGETS["admission_s"]),
            Figure("admission: [go] all subscribed", go["subscribed"], go["sockets"], False),
        ]
    return [
        Figure(
            "idle KiB per auth'd socket",
            ours["idle_kib_per_socket"],
            BUDGETS["idle_kib_per_socket"],
        ),
        Figure("idle: sockets alive", ours["alive"], ours["sockets"], lower_is_better=False),
    ]


Runner = Callable[[type[Target]], Awaitable[Outcome]]


def _runners(args: argparse.Namespace) -> dict[str, Runner]:
    return {
        "fanout": lambda t: fanout(t, args.duration),
        "saturation": lambda t: saturation(t, args.duration),
        "admission": admission,
        "idle": lambda t: idle(t, args.sockets),
    }


async def _round(index: int, scenarios: list[str], runners: dict[str, Runner]) -> list[Figure]:
    """Every scenario on both targets; returns the budget figures, prints the comparison."""
    print(f"round {index + 1}, machine:", json.dumps(await readings()))
    order: list[type[Target]] = (
        [Centrifuge, StudyBuddy] if index % 2 == 0 else [StudyBuddy, Centrifuge]
    )
    lines, figures = [], []
    for scenario in scenarios:
        results: dict[str, dict[str, Any]] = {}
        for target in order:
            print(f"-- {scenario} on {target.name}")
            results[target.name] = (await runners[scenario](target)).result
        ours, go = results[StudyBuddy.name], results[Centrifuge.name]
        lines += [row.line(ours, go) for row in ROWS[scenario]]
        figures += budgets(scenario, ours, go)
    header = f"{'scenario':<11} {'figure':<30} {'StudyBuddy':>12} {'Go':>12} {'SB / Go':>9}"
    print(f"\nround {index + 1} (first: {order[0].name})\n{header}")
    print("\n".join(lines))
    return figures


async def main() -> int:
    """Run the rounds and print every budget line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument(
        "--duration", type=float, default=10.0, help="fanout/saturation send window"
    )
    parser.add_argument("--sockets", type=int, default=10_000, help="idle sockets per target")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    runners = _runners(args)
    figures: list[Figure] = []
    for index in range(args.rounds):
        round_figures = await _round(index, args.scenarios, runners)
        print("\n".join(f.line() for f in round_figures))
        figures += round_figures
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
