"""Fan-out benchmarks with budgets (issue 5): ``python -m loadtests.fanout [scenario ...]``.

``--target centrifuge`` runs a scenario against Go's centrifuge instead (two nodes of
``loadtests/yardstick/centrifuge_node`` on one Redis, bare fan-out, no auth) with the same
client code; ``python -m loadtests.yardstick`` runs both side by side (issue 11).

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
- ``admission`` (not in the default set): a reconnect storm, 2,000 sockets of 667 users
  (3 each) opened at once over two nodes: the time until every one is authenticated
  (``ready``) and subscribed to one group.

The client shares the machine with the nodes, Redis and PostgreSQL; its own CPU is reported
so the figures can be read honestly, and two readings of the machine itself are printed first
(``loadtests/machine.py``). Budgets are at the top; each figure prints PASS/FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvloop

from loadtests.cluster import cpu_seconds, rss_bytes, write_syscalls
from loadtests.lean_client import Incoming, LeanSocket, count_frames, record_messages
from loadtests.machine import readings
from loadtests.targets import TARGETS, Identity, StudyBuddy, Target

BUDGETS = {
    "fanout_p99_ms": 10.0,
    "fanout_cpu_s_per_200k": 2.5,
    "history_p99_ms": 1000.0,
    "saturation_delivered_per_s": 190_000.0,
    "saturation_p99_ms": 100.0,
    "idle_kib_per_socket": 24.0,
    "held_sockets": 10_000,
    "admission_s": 3.0,
}
RECEIVERS = 200
SENDERS = 5
ADMISSION_USERS = 667
ADMISSION_SOCKETS = 2_000
ADMISSION_GIVE_UP_S = 60.0
ADMISSION_REPLY_TIMEOUT_S = 30.0
"""A slow answer is waited for, not retried: only a refusal (a close, an HTTP error) is."""


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


@dataclass
class Outcome:
    """One scenario's raw figures (printed as JSON) and its figures against budgets."""

    result: dict[str, Any]
    figures: list[Figure]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _open(
    target: Target,
    url: str,
    who: Identity,
    group: str | None,
    record: bool | Callable[[LeanSocket, Incoming], None],
    receive_buffer: int = 0,
    timeout: float = 10.0,
) -> LeanSocket:
    """One socket: connected, authenticated (or connected, for centrifuge), maybe subscribed.

    ``record``: tally messages (True), nothing (False), or call this on every frame.
    """
    on_frame = record if callable(record) else record_messages if record else None
    sock = await LeanSocket.connect(url, on_frame, receive_buffer, target.dialect, timeout)
    try:
        await sock.hello(who.user_id, who.token, timeout)
        if group is not None:
            await sock.subscribe(group, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


async def _sockets(
    target: Target, users: list[Identity], group: str | None, record: bool, small: int = 0
) -> list[LeanSocket]:
    """Sockets spread over the nodes; the first ``small`` with a 4 KiB receive buffer."""
    sockets = []
    for index, who in enumerate(users):
        url = target.urls[index % len(target.urls)]
        buffer = 4096 if index < small else 0
        sockets.append(await _open(target, url, who, group, record, buffer))
    return sockets


async def _send_at_rate(
    sock: LeanSocket, group: str, rate: float, duration: float, sender: int, body_size: int = 0
) -> int:
    interval, sent, started = 1.0 / rate, 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        due = int(elapsed / interval) + 1
        while sent < due:
            body = f"benchmark message s{sender}-{sent}".ljust(body_size, "x")
            sock.send(sock.dialect.send(group, body, sender, sent))
            sent += 1
        await asyncio.sleep(interval / 2)
    return sent


def _count(receivers: list[LeanSocket]) -> int:
    return sum(len(r.tally.seqs) for r in receivers)


@dataclass(frozen=True)
class Load:
    """What the senders send, and how many receivers stall (stop reading) from the start."""

    rate: float
    duration: float
    body_size: int = 0
    stalled: int = 0


async def _traffic(target_type: type[Target], load: Load, **env: str) -> dict[str, Any]:
    target = await target_type.start(2, **env)
    try:
        users = await target.identities(RECEIVERS + SENDERS)
        group = await target.group(users[0], users[1:])
        everyone = await _sockets(target, users[:RECEIVERS], group, True, load.stalled)
        for stalled in everyone[: load.stalled]:  # alternate nodes, like every receiver
            stalled.transport.pause_reading()  # type: ignore[union-attr]
        receivers = everyone[load.stalled :]
        senders = await _sockets(target, users[RECEIVERS:], None, record=False)
        pids = target.pids
        watch = await target.watch(group)
        cpu_before, client_before, started = (
            [cpu_seconds(p) for p in pids],
            time.process_time(),
            time.monotonic(),
        )
        writes_before = sum(write_syscalls(p) for p in pids)
        sent = sum(
            await asyncio.gather(
                *(
                    _send_at_rate(s, group, load.rate, load.duration, i, load.body_size)
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
        writes = sum(write_syscalls(p) for p in pids) - writes_before
        watched = await watch.finish(sent)
        delivered = sum(len(r.tally.seqs) for r in receivers)
        ordered = all(target.dialect.ordered(r.tally) for r in receivers)
        latencies = [lat for r in receivers for lat in r.tally.latencies]
        processed = [lat for r in receivers for lat in r.tally.processed]
        for sock in everyone + senders:
            sock.close()
        return {
            "target": target.name,
            **(await target.server_side()),
            "sent": sent,
            "expected": expected,
            "delivered": delivered,
            "ordered_gapless": ordered,
            "elapsed_s": elapsed,
            "send_window_s": load.duration,
            "server_cpu_s": cpu,
            "cpu_s_per_200k": cpu / max(delivered, 1) * 200_000,
            "server_writes_per_delivery": writes / max(delivered, 1),
            "client_cpu_s": client_cpu,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "client_processed_p50_ms": percentile(processed, 0.50) * 1000,
            "client_processed_p99_ms": percentile(processed, 0.99) * 1000,
            **watched,
        }
    finally:
        await target.stop()


async def fanout(target: type[Target], duration: float, **env: str) -> Outcome:
    """5 senders x 50 msg/s into 200 subscribers over two nodes (``env``: node settings)."""
    result = await _traffic(target, Load(50.0, duration), **env)
    print("fanout:", json.dumps(result, indent=1))
    lost = result["expected"] - result["delivered"]
    figures = [
        Figure("fanout p99 publish-to-delivery ms", result["p99_ms"], BUDGETS["fanout_p99_ms"]),
        Figure(
            "fanout server CPU-s per 200k",
            result["cpu_s_per_200k"],
            BUDGETS["fanout_cpu_s_per_200k"],
        ),
        Figure("fanout lost deliveries", lost, 0),
    ]
    if "in_history" in result:  # StudyBuddy keeps history; the yardstick does not
        figures += [
            Figure(
                "fanout acked-to-history p99 ms",
                result["history_p99_ms"],
                BUDGETS["history_p99_ms"],
            ),
            Figure("fanout acked not in history", result["sent"] - result["in_history"], 0),
        ]
    figures.append(
        Figure(
            "fanout order and gaps (1 = ok)",
            float(result["ordered_gapless"]),
            1.0,
            lower_is_better=False,
        )
    )
    return Outcome(result, figures)


async def slow(target: type[Target], duration: float) -> Outcome:
    """The fanout load (1,000-character bodies) with one stalled receiver per node."""
    if target is not StudyBuddy:
        raise SystemExit("slow counts StudyBuddy's 4010 closes (its metrics): StudyBuddy only")
    result = await _traffic(target, Load(50.0, max(duration, 20.0), body_size=1000, stalled=2))
    print("slow:", json.dumps(result, indent=1))
    return Outcome(
        result,
        [
            Figure("slow: others' p99 ms", result["p99_ms"], BUDGETS["fanout_p99_ms"]),
            Figure("slow: others' lost deliveries", result["expected"] - result["delivered"], 0),
            Figure(
                "slow: stalled closed with 4010",
                result["slow_consumer_closes"],
                2,
                lower_is_better=False,
            ),
        ],
    )


async def saturation(target: type[Target], duration: float) -> Outcome:
    """5 senders x 200 msg/s: 200,000 deliveries/s offered."""
    result = await _traffic(target, Load(200.0, duration))
    result["delivered_per_s"] = result["delivered"] / result["elapsed_s"]  # until the last one
    print("saturation:", json.dumps(result, indent=1))
    return Outcome(
        result,
        [
            Figure(
                "saturation delivered per second",
                result["delivered_per_s"],
                BUDGETS["saturation_delivered_per_s"],
                lower_is_better=False,
            ),
            Figure("saturation p99 ms", result["p99_ms"], BUDGETS["saturation_p99_ms"]),
        ],
    )


async def idle(target_type: type[Target], count: int) -> Outcome:
    """Memory per idle authenticated (centrifuge: connected) socket on one node."""
    target = await target_type.start(1, WS_MAX_SOCKETS_PER_USER="100000")
    try:
        (who,) = await target.identities(1)
        pid = target.pids[0]
        warm = await _sockets(target, [who] * 50, None, record=False)
        await asyncio.sleep(1)
        before = rss_bytes(pid)
        sockets = await _sockets(target, [who] * count, None, record=False)
        await asyncio.sleep(2)
        after = rss_bytes(pid)
        alive = sum(1 for s in sockets if not s.closed.done())
        result: dict[str, Any] = {
            "target": target.name,
            "sockets": count,
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "alive": alive,
            "idle_kib_per_socket": (after - before) / count / 1024,
        }
        print("idle:", json.dumps(result, indent=1))
        for sock in warm + sockets:
            sock.close()
        return Outcome(
            result,
            [
                Figure(
                    "idle KiB per socket",
                    result["idle_kib_per_socket"],
                    BUDGETS["idle_kib_per_socket"],
                ),
                Figure(
                    "sockets held by one node",
                    alive,
                    BUDGETS["held_sockets"],
                    lower_is_better=False,
                ),
            ],
        )
    finally:
        await target.stop()


@dataclass
class _Admitted:
    """One storm socket: when it was subscribed (from the storm's start), after how many tries."""

    sock: LeanSocket | None
    seconds: float
    attempts: int
    failures: Counter[str]


async def _admit(target: Target, url: str, who: Identity, group: str, started: float) -> _Admitted:
    """Connect, authenticate, subscribe; on a refusal retry with full-jitter backoff."""
    failures: Counter[str] = Counter()
    attempts = 0
    while True:
        attempts += 1
        try:
            sock = await _open(target, url, who, group, count_frames, 0, ADMISSION_REPLY_TIMEOUT_S)
            return _Admitted(sock, time.monotonic() - started, attempts, failures)
        except Exception as exc:  # any refusal is retried, and counted
            failures[f"{type(exc).__name__}: {str(exc)[:60] or 'handshake'}"] += 1
        if time.monotonic() - started > ADMISSION_GIVE_UP_S:
            return _Admitted(None, float("nan"), attempts, failures)
        await asyncio.sleep(random.uniform(0, min(5.0, 0.1 * 2**attempts)))


async def admission(target_type: type[Target]) -> Outcome:
    """2,000 sockets of 667 users (3 each) opened at once on two nodes, until all subscribed."""
    target = await target_type.start(2)
    try:
        users = await target.identities(ADMISSION_USERS)
        group = await target.group(users[0], users[1:])
        plan = [users[index % len(users)] for index in range(ADMISSION_SOCKETS)]
        urls, pids = target.urls, target.pids
        cpu_before, client_before = [cpu_seconds(p) for p in pids], time.process_time()
        started = time.monotonic()
        admitted = await asyncio.gather(
            *(
                _admit(target, urls[index % len(urls)], who, group, started)
                for index, who in enumerate(plan)
            )
        )
        cpu = sum(cpu_seconds(p) - b for p, b in zip(pids, cpu_before, strict=True))
        client_cpu = time.process_time() - client_before
        sockets = [a.sock for a in admitted if a.sock is not None]
        frames = sum(s.tally.frames for s in sockets)  # those of the admitted sockets
        times = [a.seconds for a in admitted if a.sock is not None]
        await asyncio.sleep(1)
        failures: Counter[str] = Counter()
        for one in admitted:
            failures.update(one.failures)
        result: dict[str, Any] = {
            "target": target.name,
            "sockets": len(plan),
            "users": len(users),
            "subscribed": len(sockets),
            "admission_s": max(times) if len(sockets) == len(plan) else float("inf"),
            "p50_s": percentile(times, 0.50),
            "p99_s": percentile(times, 0.99),
            "retried_sockets": sum(1 for a in admitted if a.attempts > 1),
            "failures": dict(failures.most_common(5)),
            "alive_1s_later": sum(1 for s in sockets if not s.closed.done()),
            "server_cpu_s": cpu,
            "client_cpu_s": client_cpu,
            "frames_received": frames,
        }
        print("admission:", json.dumps(result, indent=1))
        for sock in sockets:
            sock.close()
        return Outcome(
            result,
            [
                Figure(
                    "admission s, all subscribed", result["admission_s"], BUDGETS["admission_s"]
                ),
                Figure(
                    "admission sockets alive 1 s later",
                    result["alive_1s_later"],
                    len(plan),
                    lower_is_better=False,
                ),
            ],
        )
    finally:
        await target.stop()


async def main() -> int:
    """Run the chosen scenarios and print each figure against its budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=["fanout", "slow", "saturation", "idle"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--target", choices=sorted(TARGETS), default=StudyBuddy.name)
    args = parser.parse_args()
    target = TARGETS[args.target]
    runners = {
        "fanout": lambda: fanout(target, args.duration),
        "slow": lambda: slow(target, args.duration),
        "saturation": lambda: saturation(target, args.duration),
        "idle": lambda: idle(target, args.sockets),
        "admission": lambda: admission(target),
    }
    unknown = sorted(set(args.scenarios) - set(runners))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {sorted(runners)}")
    print("machine:", json.dumps(await readings()))
    print("target:", target.name)
    figures: list[Figure] = []
    for name in args.scenarios:
        figures += (await runners[name]()).figures
    print("\n".join(f.line() for f in figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    # The client is the measuring instrument: uvloop keeps its own cost (and delay) low.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
