"""Ack latency at ``REDIS_MIN_REPLICAS_ACK`` 0 and 1 (issue 12, ADR 0023): ``make bench-acks``.

Starts a local Redis Cluster (3 primaries + 3 replicas, ``appendfsync always``; the kit of
``make cluster``), then for each N one node (``REDIS_CLUSTER=true``) on a fresh database:
SENDERS sockets, each sending into its own group (the groups' slots spread over the
primaries) at a steady pace, MESSAGES in all, RATE per second together. The ack latency of
a message is from just before its ``send`` is written to the ``ack``'s arrival at the socket
(kernel timestamp). Prints p50/p99/max per N and the difference N=1 makes.

There is no latency budget (the issue asks for the figures, for the ADR); the run fails when
a send is refused or an ack is missing, since the figures would then describe fewer messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import uvloop

from loadtests.cluster import (
    Cluster,
    PrimaryLoad,
    group_with_members,
    on_cluster,
    redis_cluster,
    register_users,
)
from loadtests.fanout import percentile
from loadtests.lean_client import STUDYBUDDY, LeanSocket
from loadtests.machine import readings
from scripts.redis_cluster import LocalCluster

SENDERS = 8
MESSAGES = 2000
RATE = 100.0
"""Messages per second, all senders together."""
WARM_UP = 5
"""Messages per sender sent (and not counted) before the measured ones."""


async def _sender(
    sock: LeanSocket, group: str, index: int, count: int, interval: float
) -> list[float]:
    """``count`` sends, one every ``interval`` s (phase-shifted per sender); ack latencies."""
    for n in range(WARM_UP):
        await sock.request(STUDYBUDDY.send(group, "warm-up", index, -1 - n), "ack")
    await asyncio.sleep(index * interval / SENDERS)
    started, latencies = time.monotonic(), []
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
        sent = time.time()
        await sock.request(STUDYBUDDY.send(group, f"ack bench {n}", index, n), "ack")
        latencies.append(sock.arrived - sent)
    return latencies


async def run_one(cluster: LocalCluster, replicas_ack: int) -> dict[str, Any]:
    """One node on ``cluster`` with ``REDIS_MIN_REPLICAS_ACK=replicas_ack``; its ack figures."""
    target = await Cluster.start(1, **on_cluster(cluster, REDIS_MIN_REPLICAS_ACK=str(replicas_ack)))
    try:
        node = target.nodes[0]
        users = await register_users(node.http, SENDERS)
        groups = [await group_with_members(node.http, token, []) for _, token in users]
        sockets = []
        for user_id, token in users:
            sock = await LeanSocket.connect(node.ws, timeout=10)
            await sock.hello(user_id, token)
            sockets.append(sock)
        per_sender, load = MESSAGES // SENDERS, PrimaryLoad.begin(cluster)
        interval = SENDERS / RATE
        results = await asyncio.gather(
            *(
                _sender(sock, group, index, per_sender, interval)
                for index, (sock, group) in enumerate(zip(sockets, groups, strict=True))
            ),
            return_exceptions=True,
        )
        for sock in sockets:
            sock.close()
        errors = [repr(r)[:120] for r in results if isinstance(r, BaseException)]
        latencies = [lat for r in results if not isinstance(r, BaseException) for lat in r]
        return {
            "replicas_ack": replicas_ack,
            "acked": len(latencies),
            "expected": per_sender * SENDERS,
            "errors": errors[:5],
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "max_ms": round(max(latencies, default=float("nan")) * 1000, 2),
            "primaries": load.end(),
        }
    finally:
        await target.stop()


async def main() -> int:
    """Start the cluster, measure N=0 and N=1 (``--rounds`` times, alternating which goes first)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print("machine:", json.dumps(await readings()))
    runs: list[dict[str, Any]] = []
    async with redis_cluster() as cluster:
        print("redis cluster:", cluster.url, "ports", cluster.ports)
        for index in range(args.rounds):
            for replicas_ack in (0, 1) if index % 2 == 0 else (1, 0):
                runs.append(await run_one(cluster, replicas_ack))
                print("acks:", json.dumps(runs[-1]))
    for run in runs:
        print(
            f"REDIS_MIN_REPLICAS_ACK={run['replicas_ack']}  acked {run['acked']}/{run['expected']}"
            f"  p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  max {run['max_ms']:.2f} ms"
        )
    complete = all(run["acked"] == run["expected"] and not run["errors"] for run in runs)
    print("VERDICT:", "PASS (every message acked)" if complete else "FAIL (sends refused or lost)")
    return 0 if complete else 1


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
