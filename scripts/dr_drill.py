"""Disaster-recovery drill: lose PostgreSQL and Redis under live traffic, restore, verify.

Run from the repository root: ``python -m scripts.dr_drill`` (``make dr-drill``). Everything
runs on 127.0.0.1 in one temp directory: a PostgreSQL cluster with WAL archiving and a base
backup, a Redis with AOF (copied every second), two nodes, four users sending messages over
real sockets. Then both data directories are destroyed (SIGKILL, ``rm -rf``) while the
traffic goes on, and the drill restores, in this order:

1. the nodes are stopped: their memory (hub positions, caches) belongs to the lost world;
2. the recovery point ``R`` is chosen: the newest whole second that both backups cover (the
   newest AOF copy started after it, and the WAL archive holds a commit after it);
3. PostgreSQL: base backup + archived WAL replayed up to ``R`` (exclusive), promoted;
4. Redis: the newest AOF copy cut before ``R`` by its timestamp annotations, loaded;
5. the nodes are started; their persisters drain the restored ``persist`` stream into the
   restored database (``ON CONFLICT DO NOTHING`` makes re-writes harmless).

Why the two restores together hold every message acked before ``R``: an ack is sent after
the append script ran in Redis (and, with ``appendfsync always``, after it reached the AOF),
so the cut Redis holds it, either still in the ``persist`` stream or removed from it by
``XDEL``. A persister removes an entry only after its PostgreSQL transaction committed, so a
removal before ``R`` means a commit before ``R``, which the PITR keeps. Conversely a commit
before ``R`` comes from an entry appended before ``R``, so the restored counter is never
behind the restored database. The drill checks all of it against REST history and exits 1
if an acked-before-``R`` message is missing, duplicated or changed (or any other failure in
:mod:`scripts.drill.verify`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import time
import uuid

import asyncpg
from redis.asyncio import Redis

from loadtests.cluster import group_with_members, register_users
from scripts.drill.nodes import Node, migrate, node_environment
from scripts.drill.stores import ArchivedPostgres, CopiedRedis
from scripts.drill.traffic import Sender, Traffic
from scripts.drill.verify import Timeline, Verdict, check, fetch_history, figures, iso
from tests.fixtures.pg_cluster import make_root

DATABASE = "studybuddy"
PREFIX = "sb:"


def say(text: str) -> None:
    """One progress line."""
    print(f"dr-drill: {text}", flush=True)


class Drill:
    """One run of the drill."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = make_root("sbdr-")
        self.pg = ArchivedPostgres(self.root)
        self.redis = CopiedRedis(self.root, args.aof_copy_interval)
        self.nodes: list[Node] = []
        self.tokens: list[str] = []
        self.groups: list[str] = []
        self.traffic = Traffic([])
        self.moments: dict[str, float] = {}
        self.counters: list[str] = []

    async def run(self) -> int:
        """Set up, run, destroy, restore, verify; the exit code."""
        try:
            await self.set_up()
            await self.live()
            await self.destroy()
            await self.restore()
            await self.after_restore()
            return await self.verify()
        finally:
            await self.tear_down()

    async def set_up(self) -> None:
        """Services, schema, nodes, users and groups."""
        started = time.monotonic()
        await asyncio.to_thread(self.pg.start, DATABASE)
        await asyncio.to_thread(self.redis.start)
        env = node_environment(self.pg.cluster.url(DATABASE), self.redis.url, self.root / "media")
        await asyncio.to_thread(migrate, env)
        self.nodes = [Node(env, self.root / f"node{i}.log") for i in range(2)]
        await self._start_nodes()
        users = await register_users(self.nodes[0].http, self.args.users)
        self.tokens = [token for _, token in users]
        for _ in range(2):
            self.groups.append(
                await group_with_members(self.nodes[0].http, self.tokens[0], self.tokens[1:])
            )
        say(
            f"set up in {time.monotonic() - started:.1f} s: PostgreSQL :{self.pg.cluster.port}"
            f" (WAL archive), Redis :{self.redis.server.port} (AOF copied every"
            f" {self.args.aof_copy_interval} s), nodes :{self.nodes[0].port} :{self.nodes[1].port},"
            f" {len(self.tokens)} users, {len(self.groups)} groups; in {self.root}"
        )

    async def _start_nodes(self) -> None:
        for node in self.nodes:
            node.start()
        await asyncio.gather(*(node.wait_ready() for node in self.nodes))

    async def live(self) -> None:
        """Traffic on both nodes; an online base backup while it runs."""
        senders = [
            Sender(i, self.nodes[i % 2].ws, token, self.groups, self.args.period)
            for i, token in enumerate(self.tokens)
        ]
        self.traffic.senders = senders
        self.traffic.start()
        await asyncio.sleep(self.args.warm_up)
        await asyncio.to_thread(self.pg.base_backup)
        say(f"base backup done at {iso(self.pg.backup_done_at)}; {len(self.traffic.acks)} acks")
        await asyncio.sleep(self.args.run)

    async def destroy(self) -> None:
        """SIGKILL PostgreSQL and Redis and delete both data directories, traffic running."""
        self.redis.stop_copier()
        self.moments["destroyed"] = time.time()
        self.redis.server.kill()
        self.pg.cluster.kill()
        await asyncio.to_thread(self.redis.destroy)
        await asyncio.to_thread(self.pg.destroy)
        say(f"destroyed both data directories at {iso(self.moments['destroyed'])}")

    def choose_recovery_point(self) -> int:
        """The newest whole second both backups cover (or older, with ``--target-age``)."""
        copy_at = self.redis.newest_copy().taken_at
        commit_at = self.pg.last_archived_commit()
        self.moments.update(newest_aof_copy=copy_at, newest_archived_commit=commit_at)
        ahead: float = max(self.args.pg_offset, 0.0)
        age: float = self.args.target_age
        point = math.floor(min(copy_at - 0.1, commit_at - 0.001 - ahead))
        if age:
            point = min(point, math.floor(self.moments["destroyed"] - age))
        if point <= self.pg.backup_done_at:
            raise RuntimeError("the recovery point is before the end of the base backup")
        return point

    async def restore(self) -> None:
        """Stop nodes; PostgreSQL PITR; Redis AOF; compare counters; start nodes."""
        for node in self.nodes:
            node.kill()
        point = self.choose_recovery_point()
        self.moments["recovery_point"] = point
        say(f"recovery point R = {iso(point)}")
        if self.args.pg_offset:
            say(f"misaligned on purpose: PostgreSQL restored to R {self.args.pg_offset:+} s")
        await asyncio.to_thread(self.pg.restore, point + self.args.pg_offset)
        self.moments["postgres_restored"] = time.time()
        say("PostgreSQL: " + " | ".join(self.pg.recovery_log()))
        copy = self.redis.newest_copy()
        verdict = await asyncio.to_thread(self.redis.restore, copy, point)
        self.moments["redis_restored"] = time.time()
        say(f"Redis: copy taken {iso(copy.taken_at)}, {verdict}")
        await self.compare_counters()
        await self._start_nodes()
        self.moments["nodes_ready"] = time.time()
        await asyncio.gather(
            *(fetch_history(node.http, self.tokens[0], self.groups[0]) for node in self.nodes)
        )
        self.moments["serving_history"] = time.time()
        await self.wait_drained()
        self.moments["drained"] = time.time()
        serving = self.moments["serving_history"] - self.moments["destroyed"]
        say(f"nodes serving history {serving:.2f} s after D")

    async def compare_counters(self) -> None:
        """Each group's restored Redis counter against the restored database's max(seq)."""
        redis = Redis.from_url(self.redis.url)
        database = await asyncpg.connect(self.pg.cluster.url(DATABASE))
        try:
            for group in self.groups:
                counter = int(await redis.get(f"{PREFIX}seq:{group}") or 0)
                stored = await database.fetchval(
                    "SELECT coalesce(max(seq), 0) FROM messages WHERE group_id = $1",
                    uuid.UUID(group),
                )
                state = "ok" if counter >= stored else "BEHIND: seq reuse ahead (issue 11)"
                self.counters.append(
                    f"group {group[:8]}: Redis seq {counter}, PostgreSQL max {stored} ({state})"
                )
        finally:
            await redis.aclose()
            await database.close()
        for line in self.counters:
            say(line)

    async def wait_drained(self, within_s: float = 60) -> None:
        """Wait until the persisters emptied the ``persist`` stream."""
        redis = Redis.from_url(self.redis.url)
        deadline = time.monotonic() + within_s
        try:
            while await redis.xlen(f"{PREFIX}persist"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the persist stream did not drain")
                await asyncio.sleep(0.05)
        finally:
            await redis.aclose()

    async def after_restore(self) -> None:
        """Traffic on the restored system, then stop it and let the persisters drain."""
        await asyncio.sleep(self.args.after)
        await self.traffic.stop()
        await self.wait_drained()
        say(f"{self.traffic.acked_since(self.moments['redis_restored'])} acks after the restore")

    async def verify(self) -> int:
        """Check history against the acks; print the figures; the exit code."""
        history = []
        for group in self.groups:
            history.extend(await fetch_history(self.nodes[1].http, self.tokens[0], group))
        m = self.moments
        timeline = Timeline(
            self.pg.backup_done_at, m["newest_aof_copy"], m["newest_archived_commit"],
            m["recovery_point"], m["destroyed"], m["postgres_restored"], m["redis_restored"],
            m["nodes_ready"], m["serving_history"], m["drained"],
        )  # fmt: skip
        verdict = check(self.traffic.acks, history, timeline)
        self.report(verdict, timeline)
        return 1 if verdict.failures else 0

    def report(self, verdict: Verdict, timeline: Timeline) -> None:
        """Print counts, figures, notes and failures."""
        senders = self.traffic.senders
        unanswered = sum(s.unanswered for s in senders)
        refused = sum(s.refused for s in senders)
        say(f"sends not acknowledged: {unanswered}; connection attempts refused: {refused}")
        for name, value in verdict.counts.items():
            say(f"{name}: {value}")
        for label, figure in figures(verdict, timeline):
            say(f"{label}: {figure}")
        for note in verdict.notes:
            say(f"NOTE: {note}")
        for failure in verdict.failures[:50]:
            say(f"FAIL: {failure}")
        say("PASS" if not verdict.failures else f"FAILED ({len(verdict.failures)} failures)")

    async def tear_down(self) -> None:
        """Stop everything we started; delete the temp directory unless ``--keep``."""
        await self.traffic.stop()
        for node in self.nodes:
            node.kill()
        self.redis.stop_copier()
        self.redis.server.kill()
        if getattr(self.pg, "cluster", None) is not None:
            self.pg.cluster.kill()
        if self.args.keep:
            say(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=4, help="senders (half on each node)")
    parser.add_argument("--period", type=float, default=0.2, help="seconds between sends")
    parser.add_argument("--warm-up", type=float, default=3.0, help="traffic before the backup")
    parser.add_argument("--run", type=float, default=6.0, help="traffic after the backup")
    parser.add_argument("--after", type=float, default=3.0, help="traffic after the restore")
    parser.add_argument("--aof-copy-interval", type=float, default=1.0)
    parser.add_argument(
        "--target-age", type=float, default=0.0, help="restore to at least this long before D"
    )
    parser.add_argument(
        "--pg-offset",
        type=float,
        default=0.0,
        help="restore PostgreSQL to R plus this many seconds: a misaligned restore, to see"
        " what the checks catch (positive: seq reuse; negative: lost messages and seq gaps)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the drill; 0 when every check passed."""
    return asyncio.run(Drill(parse(argv)).run())


if __name__ == "__main__":
    sys.exit(main())
