"""StudyBuddy on Redis Cluster against one Redis (issue 12): ``make bench-cluster``.

Starts a local Redis Cluster (3 primaries + 3 replicas; the kit of ``make cluster``), then:

- ``fanout``: ``loadtests/fanout.py``'s fanout scenario (2 nodes, 200 sockets in one group,
  5 senders x 50 msg/s) on one Redis and on the cluster (``REDIS_CLUSTER=true``), alternating
  which goes first, ``--rounds`` times. Budget: server CPU-s per 200,000 deliveries on the
  cluster within 15 % of one Redis in the same sitting (the pooled figures of every round);
  loss, order and history are judged on both (p99 and the rest are printed, not judged here:
  ``make bench`` judges them on one Redis).
- ``rooms``: on the cluster, 100 groups (their keys and channels spread over the primaries by
  partition), 2 nodes, 100 users each with one socket subscribed to its own group and the next
  user's (so every group has one subscriber per node), every user sending into its own group.
  Each primary's Redis CPU (``/proc/<pid>/stat`` of its ``redis-server``) and commands are
  printed; the split is judged as: every primary carries at least 20 % of the primaries' CPU
  (a third each when even; one shard doing the work would leave the others near 0).

Everything shares the machine's 2 cores; the machine readings are printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import uvloop

from loadtests.cluster import PrimaryLoad, on_cluster, redis_cluster
from loadtests.fanout import Figure, _open, _send_at_rate, fanout, percentile
from loadtests.machine import readings
from loadtests.targets import StudyBuddy, Target
from scripts.redis_cluster import LocalCluster

CLUSTER_CPU_RATIO = 1.15
ROOMS = 100
ROOM_RATE = 5.0
"""Messages per second each user sends into its own group."""
MIN_PRIMARY_SHARE = 0.20


async def fanout_rounds(cluster: LocalCluster, rounds: int, duration: float) -> list[Figure]:
    """Fanout on one Redis and on the cluster, alternating; the pooled CPU ratio."""
    pooled = {"single": [0.0, 0], "cluster": [0.0, 0]}
    envs = {"single": {}, "cluster": on_cluster(cluster)}
    figures: list[Figure] = []
    for index in range(rounds):
        order = ["single", "cluster"] if index % 2 == 0 else ["cluster", "single"]
        for name in order:
            print(f"round {index + 1}: fanout on {name}")
            outcome = await fanout(StudyBuddy, duration, **envs[name])
            pooled[name][0] += outcome.result["server_cpu_s"]
            pooled[name][1] += outcome.result["delivered"]
            correctness = [f for f in outcome.figures if f.budget == 0 or not f.lower_is_better]
            figures += [
                Figure(
                    f"{name}: {f.name.removeprefix('fanout ')}",
                    f.value,
                    f.budget,
                    f.lower_is_better,
                )
                for f in correctness
            ]
    per_200k = {name: cpu / max(n, 1) * 200_000 for name, (cpu, n) in pooled.items()}
    print("fanout CPU-s per 200k, pooled:", json.dumps(per_200k))
    ratio = per_200k["cluster"] / per_200k["single"]
    return [*figures, Figure("cluster / single CPU per delivery", ratio, CLUSTER_CPU_RATIO)]


async def rooms(cluster: LocalCluster, duration: float) -> list[Figure]:
    """100 groups over the shards; each primary's Redis CPU."""
    target: Target = await StudyBuddy.start(2, **on_cluster(cluster))
    try:
        users = await target.identities(ROOMS)
        groups = [await target.group(users[i], [users[(i + 1) % ROOMS]]) for i in range(ROOMS)]
        received: list[float] = []
        sockets = []
        for i, who in enumerate(users):
            url = target.urls[i % 2]
            sock = await _open(target, url, who, groups[i], True)
            await sock.subscribe(groups[(i - 1) % ROOMS])  # the previous user's group
            sockets.append(sock)
        load, cpu_before = PrimaryLoad.begin(cluster), time.process_time()
        sent = sum(
            await asyncio.gather(
                *(
                    _send_at_rate(sock, groups[i], ROOM_RATE, duration, i)
                    for i, sock in enumerate(sockets)
                )
            )
        )
        deadline = time.monotonic() + 15
        while sum(len(s.tally.seqs) for s in sockets) < 2 * sent:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # the tallies are filled by protocol callbacks
        primaries = load.end()
        for sock in sockets:
            received += sock.tally.latencies
            sock.close()
        result: dict[str, Any] = {
            "sent": sent,
            "expected": 2 * sent,
            "delivered": len(received),
            "p50_ms": percentile(received, 0.50) * 1000,
            "p99_ms": percentile(received, 0.99) * 1000,
            "client_cpu_s": time.process_time() - cpu_before,
            "primaries": primaries,
        }
        print("rooms:", json.dumps(result, indent=1))
        least = min(p["cpu_share"] for p in primaries.values()) if primaries else 0.0
        return [
            Figure("rooms: lost deliveries", result["expected"] - result["delivered"], 0),
            Figure("rooms: primaries", len(primaries), 3, lower_is_better=False),
            Figure("rooms: least primary's CPU share", least, MIN_PRIMARY_SHARE, False),
        ]
    finally:
        await target.stop()


async def main() -> int:
    """Start the cluster, run the chosen scenarios, print each figure against its budget."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=["fanout", "rooms"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - {"fanout", "rooms"})
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from fanout, rooms")
    print("machine:", json.dumps(await readings()))
    figures: list[Figure] = []
    async with redis_cluster() as cluster:
        print("redis cluster:", cluster.url, "ports", cluster.ports)
        if "fanout" in args.scenarios:
            figures += await fanout_rounds(cluster, args.rounds, args.duration)
        if "rooms" in args.scenarios:
            figures += await rooms(cluster, args.duration)
    print("machine after:", json.dumps(await readings()))
    print("\n".join(f.line() for f in figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
