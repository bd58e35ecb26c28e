"""Reconnect storm benchmark (issue 11): ``python -m loadtests.storm`` (``make bench-storm``).

2,000 sockets of 667 users (3 each) on 2 nodes, one group; a sender on node B sends every
0.1 s; node A is SIGTERMed and started again on its port. Its sockets come back the way the
documented client does (full-jitter backoff, any node that answers, ``subscribe`` with
``since_seq``). Judged:

- correctness: every client ends with the whole stream, each seq once, in order, within 30 s
  of the restart, and nobody is closed as a slow consumer (4010);
- the budget: the p99 publish-to-arrival (kernel timestamp) of the messages node B's own
  sockets receive in the 10 s from the restart, <= 50 ms.

The storm itself (``Client``, ``sender``, ``storm``) is shared with the integration test
``tests/integration/test_reconnect_storm.py``, which asserts the correctness part and prints
the p99: a latency budget on a shared 2-core machine belongs here, not in a test.
``--profile SECONDS`` records node B with py-spy (``--py-spy``, a py-spy binary) from the
restart on, and prints where its event loop spent the samples. ``--retry-later 2`` makes the
clients wait as the JavaScript SDK does after a going-away close (a window of at least 2 s,
``retryLaterMs``); by default they come back within 0.2 s, as the test's clients do.

Besides the verdicts it prints what tells the code from the machine: node B's CPU and the
time it spent runnable but waiting for a CPU (``/proc/<pid>/schedstat``), the load average,
node B's p99 in the 2 s before the restart and in each second after it, and on which node
the sockets ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop

from loadtests.cluster import (
    ROOT,
    Cluster,
    cpu_seconds,
    group_with_members,
    register_users,
    run_delay_seconds,
)
from loadtests.fanout import Figure
from loadtests.lean_client import Incoming, LeanSocket
from loadtests.loadtest import LOAD_BIN, start_profile, summarise_profile
from loadtests.machine import readings

SOCKETS = 2000
USERS = 667
SEND_EVERY_S = 0.1
BACK_WITHIN_S = 30.0
OTHER_NODE_WINDOW_S = 10.0
"""The other node's latency is judged over this long from the restart."""
BUDGETS = {"other_node_p99_ms": 50.0, "back_s": BACK_WITHIN_S}
ERRORS = (OSError, TimeoutError, ConnectionError, RuntimeError)


RETRY_LATER = frozenset({1001, 1012, 1013})
"""Closes after which the JavaScript SDK waits a window of at least ``retryLaterMs``."""


def _backoff(attempt: int, floor: float = 0.0) -> float:
    """Full jitter: uniform in [0, max(floor, min(5 s, 0.2 s x 2^attempt))]."""
    return random.uniform(0, max(floor, min(5.0, 0.2 * 2**attempt)))


@dataclass
class Client:
    """One reconnecting member: what it received, how its sockets ended, its latencies."""

    user_id: str
    token: str
    home: int
    seqs: list[int] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    """(arrival time, publish-to-arrival seconds) of each message."""
    back_at: float | None = None
    node: int | None = None
    """The node of the socket subscribed last."""
    retry_later_s: float = 0.0
    """After a 1001/1012/1013 close, wait a window of at least this (the SDK: 2 s; 0: none)."""

    def on_frame(self, sock: LeanSocket, frame: Incoming) -> None:
        """Keep every message's seq (duplicates and steps back too) and its latency."""
        if frame.type != "message":
            return
        self.seqs.append(frame.seq)
        created = datetime.fromisoformat(frame.created_at.replace("Z", "+00:00")).timestamp()
        self.latencies.append((time.monotonic(), sock.arrived - created))

    async def run(self, urls: list[str], group: str, stop: asyncio.Event) -> None:
        """Stay connected and subscribed until ``stop``; reconnect with full jitter."""
        attempt = 0
        while not stop.is_set():
            node = (self.home + attempt) % len(urls)
            url = urls[node]
            try:
                sock = await LeanSocket.connect(url, self.on_frame, timeout=10)
            except ERRORS:
                attempt += 1
                await asyncio.sleep(_backoff(attempt))
                continue
            try:
                await sock.hello(self.user_id, self.token, 10)
                since = {"since_seq": self.seqs[-1]} if self.seqs else {}
                frame = {"type": "subscribe", "group_id": group, **since}
                await sock.request(json.dumps(frame).encode(), "subscribed", 20)
                self.back_at, self.node, attempt = time.monotonic(), node, 0
                await asyncio.wait(
                    [sock.closed, asyncio.ensure_future(stop.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            except ERRORS:
                attempt += 1
            finally:
                sock.close()
                if sock.closed.done():
                    self.closes.append(sock.closed.result())
            if not stop.is_set():
                later = self.closes and self.closes[-1] in RETRY_LATER
                await asyncio.sleep(_backoff(attempt, self.retry_later_s if later else 0.0))

    def gapless_from(self, last: int) -> bool:
        """Every seq from 1 to ``last`` once, in order."""
        return self.seqs == list(range(1, last + 1))


async def sender(url: str, user: tuple[str, str], group: str, stop: asyncio.Event) -> int:
    """Send a message every SEND_EVERY_S through the node that stays up; the last acked seq."""
    sock = await LeanSocket.connect(url, timeout=10)
    await sock.hello(*user, 10)
    last, n = 0, 0
    try:
        while not stop.is_set():
            frame = {"type": "send", "group_id": group, "body": f"m{n}", "client_msg_id": f"m{n}"}
            ack = await sock.request(json.dumps(frame).encode(), "ack", 10)
            last, n = ack.seq, n + 1
            await asyncio.sleep(SEND_EVERY_S)
    finally:
        sock.close()
    return last


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``predicate`` holds (polled every 0.1 s), or raise after ``timeout`` s."""
    deadline = time.monotonic() + max(timeout, 0.1)
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:.1f} s")


@dataclass
class Storm:
    """What one storm gave: every client, the last acked seq, when node A was restarted."""

    clients: list[Client]
    last: int
    restarted_at: float
    back_s: float
    """From the restart until every client held the last message."""

    def not_gapless(self) -> list[Client]:
        """Clients missing a seq, holding one twice or out of order."""
        return [c for c in self.clients if not c.gapless_from(self.last)]

    def slow_consumer_closes(self) -> int:
        """Sockets closed with 4010."""
        return sum(1 for c in self.clients for code in c.closes if code == 4010)

    def other_node_latencies(
        self, start: float = 0.0, end: float = OTHER_NODE_WINDOW_S
    ) -> list[float]:
        """Publish-to-arrival of node B's own sockets' messages, sorted.

        Those that arrived from ``start`` to ``end`` seconds after the restart (the judged
        window by default).
        """
        start, end = self.restarted_at + start, self.restarted_at + end
        return sorted(
            latency
            for c in self.clients
            if c.home == 1
            for at, latency in c.latencies
            if start <= at <= end
        )

    def other_node_quantile_ms(
        self, q: float, start: float = 0.0, end: float = OTHER_NODE_WINDOW_S
    ) -> float:
        """The ``q`` quantile of ``other_node_latencies`` in ms (nan without samples)."""
        during = self.other_node_latencies(start, end)
        return during[min(len(during) - 1, int(len(during) * q))] * 1000 if during else float("nan")

    def other_node_p99_by_second(self) -> list[float]:
        """The p99 of each second of the window."""
        seconds = range(int(OTHER_NODE_WINDOW_S))
        return [round(self.other_node_quantile_ms(0.99, s, s + 1), 1) for s in seconds]

    def figures(self) -> dict[str, Any]:
        """The storm's figures, ready to print."""
        return {
            "sockets": len(self.clients),
            "last_seq": self.last,
            "back_s": round(self.back_s, 2),
            "not_gapless": len(self.not_gapless()),
            "slow_consumer_closes": self.slow_consumer_closes(),
            "closes_by_code": dict(Counter(code for c in self.clients for code in c.closes)),
            "ended_on_node_b": sum(1 for c in self.clients if c.node == 1),
            "other_node_samples": len(self.other_node_latencies()),
            "other_node_p50_ms": round(self.other_node_quantile_ms(0.50), 2),
            "other_node_p99_ms": round(self.other_node_quantile_ms(0.99), 2),
            "other_node_max_ms": round(self.other_node_quantile_ms(1.0), 2),
            "other_node_p99_before_ms": round(self.other_node_quantile_ms(0.99, -2.0, 0.0), 2),
            "other_node_p99_by_second_ms": self.other_node_p99_by_second(),
        }


async def storm(
    urls: list[str],
    users: list[tuple[str, str]],
    group: str,
    restart: Callable[[], Awaitable[object]],
    retry_later_s: float = 0.0,
) -> Storm:
    """Run the storm: ``users[:-1]`` hold SOCKETS sockets, ``users[-1]`` sends on node B.

    ``restart`` stops node A (``urls[0]``) and starts it again on its port; it is awaited,
    so it must not block the event loop (the clients keep running through it).
    ``retry_later_s``: the clients' wait window after a going-away close (``Client``).
    """
    members, author = users[:-1], users[-1]
    clients = [
        Client(*members[i % len(members)], home=i % 2, retry_later_s=retry_later_s)
        for i in range(SOCKETS)
    ]
    stop, sending = asyncio.Event(), asyncio.Event()
    running = [asyncio.create_task(c.run(urls, group, stop)) for c in clients]
    try:
        await until(lambda: all(c.back_at for c in clients), 60, "the first admission")
        send = asyncio.create_task(sender(urls[1], author, group, sending))
        await asyncio.sleep(2)
        restarted_at = time.monotonic()
        await restart()
        await asyncio.sleep(2)
        sending.set()
        last = await send
        await until(
            lambda: all(c.seqs and c.seqs[-1] == last for c in clients),
            BACK_WITHIN_S - (time.monotonic() - restarted_at),
            "every client back with the last message",
        )
        back_s = time.monotonic() - restarted_at
    finally:
        stop.set()
        await asyncio.gather(*running)
    return Storm(clients, last, restarted_at, back_s)


def verdicts(result: Storm) -> list[Figure]:
    """The storm's figures against its budgets and correctness rules."""
    return [
        Figure(
            "storm: other node p99 ms",
            result.other_node_quantile_ms(0.99),
            BUDGETS["other_node_p99_ms"],
        ),
        Figure("storm: all back, s after restart", result.back_s, BUDGETS["back_s"]),
        Figure("storm: clients not gapless", len(result.not_gapless()), 0),
        Figure("storm: 4010 closes", result.slow_consumer_closes(), 0),
    ]


async def _bench(profile_s: int, py_spy: Path, retry_later_s: float) -> int:
    cluster = await Cluster.start(2)
    try:
        nodes = cluster.nodes
        users = await register_users(nodes[1].http, USERS + 1)
        group = await group_with_members(nodes[1].http, users[0][1], [t for _, t in users[1:]])
        other = nodes[1].process.pid
        before = (cpu_seconds(other), run_delay_seconds(other), time.monotonic())
        profiler = None

        async def restart() -> None:
            nonlocal profiler, before
            before = (cpu_seconds(other), run_delay_seconds(other), time.monotonic())
            if profile_s:
                profiler = start_profile(other, 0, profile_s, cluster.logs, py_spy, "storm-nodeB")
            await cluster.restart(0)

        try:
            result = await storm([n.ws for n in nodes], users, group, restart, retry_later_s)
        except AssertionError as exc:
            print(f"FAIL  {exc}")
            return 1
        figures = result.figures()
        elapsed = time.monotonic() - before[2]
        figures["other_node_cpu_s"] = round(cpu_seconds(other) - before[0], 2)
        figures["other_node_waiting_for_cpu_s"] = round(run_delay_seconds(other) - before[1], 2)
        figures["since_restart_s"] = round(elapsed, 2)
        figures["load_average_1m"] = os.getloadavg()[0]
        print("storm:", json.dumps(figures, indent=1))
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)
            print(summarise_profile(cluster.logs, name="storm-nodeB"))
        checks = verdicts(result)
        print("\n".join(v.line() for v in checks))
        return 0 if all(v.ok for v in checks) else 1
    finally:
        await cluster.stop()


async def main() -> int:
    """Print the machine readings, run one storm, print its figures and verdicts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", type=int, default=0, help="py-spy node B for N seconds")
    parser.add_argument("--py-spy", type=Path, default=LOAD_BIN / "py-spy")
    parser.add_argument(
        "--retry-later",
        type=float,
        default=0.0,
        help="clients wait a window of at least this many s after 1001/1012/1013 (SDK: 2)",
    )
    args = parser.parse_args()
    print("machine:", json.dumps(await readings()))
    print("results and logs:", (ROOT / "loadtests" / "results").relative_to(ROOT))
    return await _bench(args.profile, args.py_spy, args.retry_later)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
