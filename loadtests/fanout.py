"""Fan-out benchmarks with budgets (issue 5): ``python -m loadtests.fanout [scenario ...]``.

Scenarios (all on 127.0.0.1, persistence on, a fresh database and Redis namespace each):

- ``fanout``: two nodes, 200 sockets in one group spread over both, 5 senders at 50 msg/s
  each (50,000 deliveries/s): p99 publish-to-delivery, order and loss, server CPU per
  200,000 deliveries, and p99 from ack to REST history (``loadtests/history.py``).
- ``slow``: the fanout load with 1,000-character bodies and one receiver per node that
  never reads (a 4 KiB receive window, so the server's backlog builds within seconds):
  the others' p99 and loss, and both stalled sockets closed with 4010.
- ``saturation``: the same with senders at 200 msg/s (200,000 deliveries/s offered):
  delivered per second and p99.
- ``idle``: one node; memory per idle authenticated socket, and 10,000 sockets held.

The client shares the machine with the nodes, Redis and PostgreSQL; its own CPU is reported
so the figures can be read honestly, and two readings of the machine itself are printed first
(``loadtests/machine.py``). Budgets are at the top; each figure prints PASS/FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvloop

from loadtests.cluster import Cluster, cpu_seconds, group_with_members, register_users, rss_bytes
from loadtests.history import HistoryWatch
from loadtests.lean_client import LeanSocket, record_messages
from loadtests.machine import readings

BUDGETS = {
    "fanout_p99_ms": 10.0,
    "fanout_cpu_s_per_200k": 2.5,
    "history_p99_ms": 1000.0,
    "saturation_delivered_per_s": 190_000.0,
    "saturation_p99_ms": 100.0,
    "idle_kib_per_socket": 24.0,
    "held_sockets": 10_000,
}
RECEIVERS = 200
SENDERS = 5


@dataclass
class Figure:
    """One measured figure against its budget."""

    name: str
    value: float
    budget: float
    lower_is_better: bool = True

    @property
    def ok(self) -> bool:
        """Whether the figure meets its budget."""
        return self.value <= self.budget if self.lower_is_better else self.value >= self.budget

    def line(self) -> str:
        """A printable line."""
        sign = "<=" if self.lower_is_better else ">="
        verdict = "PASS" if self.ok else "FAIL"
        return f"{verdict}  {self.name:<34} {self.value:>12.2f}  (budget {sign} {self.budget:g})"


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _sockets(
    cluster: Cluster, tokens: list[str], group: str | None, record: bool, small: int = 0
) -> list[LeanSocket]:
    """Sockets spread over the nodes; the first ``small`` with a 4 KiB receive buffer."""
    sockets = []
    for index, token in enumerate(tokens):
        node = cluster.nodes[index % len(cluster.nodes)]
        sock = await LeanSocket.connect(
            node.ws, record_messages if record else None, 4096 if index < small else 0
        )
        await sock.request(json.dumps({"type": "auth", "token": token}).encode(), "ready")
        if group is not None:
            await sock.request(
                json.dumps({"type": "subscribe", "group_id": group}).encode(), "subscribed"
            )
        sockets.append(sock)
    return sockets


async def _send_at_rate(
    sock: LeanSocket, group: str, rate: float, duration: float, tag: str, body_size: int = 0
) -> int:
    interval, sent, started = 1.0 / rate, 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        due = int(elapsed / interval) + 1
        while sent < due:
            frame = {
                "type": "send",
                "group_id": group,
                "body": f"benchmark message {tag}-{sent}".ljust(body_size, "x"),
                "client_msg_id": f"{tag}-{sent}",
            }
            sock.send(json.dumps(frame).encode())
            sent += 1
        await asyncio.sleep(interval / 2)
    return sent


async def _metric_lines(cluster: Cluster) -> list[str]:
    """Every node's Prometheus exposition, as lines."""
    lines: list[str] = []
    async with httpx.AsyncClient() as http:
        for node in cluster.nodes:
            lines += (await http.get(f"{node.http}/health/metrics")).text.splitlines()
    return lines


def _server_latency(lines: list[str]) -> tuple[float, float]:
    """p50/p99 of the nodes' own fan-out histogram (created -> written), bucket upper bounds."""
    buckets: dict[float, float] = {}
    for line in lines:
        if line.startswith("studybuddy_fanout_latency_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            key = float("inf") if bound == "+Inf" else float(bound)
            buckets[key] = buckets.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    total = buckets.get(float("inf"), 0.0)

    def quantile(q: float) -> float:
        for bound in sorted(buckets):
            if total and buckets[bound] >= q * total:
                return bound * 1000
        return float("nan")

    return quantile(0.5), quantile(0.99)


def _counter(lines: list[str], name: str) -> float:
    """A counter summed over the nodes."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + " "))


def _count(receivers: list[LeanSocket]) -> int:
    return sum(len(r.tally.seqs) for r in receivers)


@dataclass(frozen=True)
class Load:
    """What the senders send, and how many receivers stall (stop reading) from the start."""

    rate: float
    duration: float
    body_size: int = 0
    stalled: int = 0


async def _traffic(load: Load) -> dict[str, Any]:
    cluster = await Cluster.start(2)
    try:
        users = await register_users(cluster.nodes[0].http, RECEIVERS + SENDERS)
        tokens = [token for _, token in users]
        group = await group_with_members(cluster.nodes[0].http, tokens[0], tokens[1:])
        everyone = await _sockets(cluster, tokens[:RECEIVERS], group, True, load.stalled)
        for stalled in everyone[: load.stalled]:  # alternate nodes, like every receiver
            stalled.transport.pause_reading()  # type: ignore[union-attr]
        receivers = everyone[load.stalled :]
        senders = await _sockets(cluster, tokens[RECEIVERS:], None, record=False)
        pids = [node.process.pid for node in cluster.nodes]
        history, stop_watch = HistoryWatch(cluster.database_url, group), asyncio.Event()
        watcher = asyncio.create_task(history.run(stop_watch))
        cpu_before, client_before, started = (
            [cpu_seconds(p) for p in pids],
            time.process_time(),
            time.monotonic(),
        )
        sent = sum(
            await asyncio.gather(
                *(
                    _send_at_rate(s, group, load.rate, load.duration, f"s{i}", load.body_size)
                    for i, s in enumerate(senders)
                )
            )
        )
        expected = sent * len(receivers)
        deadline = time.monotonic() + 30
        while _count(receivers) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the counts are filled by protocol callbacks
        elapsed = time.monotonic() - started
        cpu = sum(cpu_seconds(p) - b for p, b in zip(pids, cpu_before, strict=True))
        client_cpu = time.process_time() - client_before
        await history.wait_for(sent, timeout=15)
        stop_watch.set()
        await watcher
        delivered = sum(len(r.tally.seqs) for r in receivers)
        ordered = all(r.tally.seqs == list(range(1, len(r.tally.seqs) + 1)) for r in receivers)
        latencies = [lat for r in receivers for lat in r.tally.latencies]
        processed = [lat for r in receivers for lat in r.tally.processed]
        for sock in everyone + senders:
            sock.close()
        lines = await _metric_lines(cluster)
        server_side = _server_latency(lines)
        return {
            "server_p50_ms": server_side[0],
            "server_p99_ms": server_side[1],
            "sent": sent,
            "expected": expected,
            "delivered": delivered,
            "ordered_gapless": ordered,
            "elapsed_s": elapsed,
            "send_window_s": load.duration,
            "slow_consumer_closes": _counter(lines, "studybuddy_ws_slow_consumer_closes_total"),
            "server_cpu_s": cpu,
            "client_cpu_s": client_cpu,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "client_processed_p50_ms": percentile(processed, 0.50) * 1000,
            "client_processed_p99_ms": percentile(processed, 0.99) * 1000,
            "in_history": len(history.lags),
            "history_p50_ms": percentile(history.lags, 0.50) * 1000,
            "history_p99_ms": percentile(history.lags, 0.99) * 1000,
        }
    finally:
        await cluster.stop()


async def fanout(duration: float) -> list[Figure]:
    """5 senders x 50 msg/s into 200 subscribers over two nodes."""
    result = await _traffic(Load(50.0, duration))
    print("fanout:", json.dumps(result, indent=1))
    per_200k = result["server_cpu_s"] / max(result["delivered"], 1) * 200_000
    lost = result["expected"] - result["delivered"]
    return [
        Figure("fanout p99 publish-to-delivery ms", result["p99_ms"], BUDGETS["fanout_p99_ms"]),
        Figure("fanout server CPU-s per 200k", per_200k, BUDGETS["fanout_cpu_s_per_200k"]),
        Figure("fanout lost deliveries", lost, 0),
        Figure(
            "fanout acked-to-history p99 ms", result["history_p99_ms"], BUDGETS["history_p99_ms"]
        ),
        Figure("fanout acked not in history", result["sent"] - result["in_history"], 0),
        Figure(
            "fanout order and gaps (1 = ok)",
            float(result["ordered_gapless"]),
            1.0,
            lower_is_better=False,
        ),
    ]


async def slow(duration: float) -> list[Figure]:
    """The fanout load (1,000-character bodies) with one stalled receiver per node."""
    result = await _traffic(Load(50.0, max(duration, 20.0), body_size=1000, stalled=2))
    print("slow:", json.dumps(result, indent=1))
    return [
        Figure("slow: others' p99 ms", result["p99_ms"], BUDGETS["fanout_p99_ms"]),
        Figure("slow: others' lost deliveries", result["expected"] - result["delivered"], 0),
        Figure(
            "slow: stalled closed with 4010",
            result["slow_consumer_closes"],
            2,
            lower_is_better=False,
        ),
    ]


async def saturation(duration: float) -> list[Figure]:
    """5 senders x 200 msg/s: 200,000 deliveries/s offered."""
    result = await _traffic(Load(200.0, duration))
    print("saturation:", json.dumps(result, indent=1))
    rate = result["delivered"] / result["elapsed_s"]  # until the last frame arrived
    return [
        Figure(
            "saturation delivered per second",
            rate,
            BUDGETS["saturation_delivered_per_s"],
            lower_is_better=False,
        ),
        Figure("saturation p99 ms", result["p99_ms"], BUDGETS["saturation_p99_ms"]),
    ]


async def idle(count: int) -> list[Figure]:
    """Memory per idle authenticated socket on one node, and ``count`` sockets held."""
    cluster = await Cluster.start(1, WS_MAX_SOCKETS_PER_USER="100000")
    try:
        ((_, token),) = await register_users(cluster.nodes[0].http, 1)
        pid = cluster.nodes[0].process.pid
        warm = await _sockets(cluster, [token] * 50, None, record=False)
        await asyncio.sleep(1)
        before = rss_bytes(pid)
        sockets = await _sockets(cluster, [token] * count, None, record=False)
        await asyncio.sleep(2)
        after = rss_bytes(pid)
        alive = sum(1 for s in sockets if not s.closed.done())
        per_socket_kib = (after - before) / count / 1024
        mib = (before / 2**20, after / 2**20)
        print(f"idle: {count} sockets, RSS {mib[0]:.1f} -> {mib[1]:.1f} MiB, alive {alive}")
        for sock in warm + sockets:
            sock.close()
        return [
            Figure("idle KiB per socket", per_socket_kib, BUDGETS["idle_kib_per_socket"]),
            Figure(
                "sockets held by one node", alive, BUDGETS["held_sockets"], lower_is_better=False
            ),
        ]
    finally:
        await cluster.stop()


async def main() -> int:
    """Run the chosen scenarios and print each figure against its budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=["fanout", "slow", "saturation", "idle"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--sockets", type=int, default=10_000)
    args = parser.parse_args()
    runners = {
        "fanout": lambda: fanout(args.duration),
        "slow": lambda: slow(args.duration),
        "saturation": lambda: saturation(args.duration),
        "idle": lambda: idle(args.sockets),
    }
    print("machine:", json.dumps(await readings()))
    figures: list[Figure] = []
    for name in args.scenarios:
        figures += await runners[name]()
    print("\n".join(f.line() for f in figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    # The client is the measuring instrument: uvloop keeps its own cost (and delay) low.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
