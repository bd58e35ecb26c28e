"""Read benchmark (issue 17): the reads users make most, over HTTP, on a seeded database.

``make bench-reads`` (``python -m loadtests.reads``) creates (or reuses) a PostgreSQL
database, migrates it, seeds 10,000 people, 1,000 groups and 1,000,000 messages with
``python -m server.admin seed`` (idempotent: a second run adds nothing), starts one node
(``python -m server.serve`` on 127.0.0.1, its own Redis key prefix), and times, one request
at a time from one keep-alive client:

- history: the first page of the busy group (seeded group 0, a tenth of all messages) and
  deep pages (``before_seq`` at random in its oldest nine tenths);
- message search in the busy group (Faker words);
- group listing with search and sort;
- unread counts of a person in 50 groups (seeded person 0, who owns the busy group; the
  bench joins them to public groups up to 50 and leaves ``UNREAD_LEFT`` messages unread in
  each);
- the export of that person (thousands of messages), downloaded whole.

It prints p50/p95/p99/max per read against the budgets (p95 under 50 ms, the export under
5 s), then ``EXPLAIN ANALYZE`` of the SQL behind each read, built by the same code the node
runs, and exits 1 when a budget is missed. ``--drop`` drops the database afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql

from loadtests.cluster import ADMIN_URL, REDIS_URL, ROOT, free_port
from server.admin import seed_plan
from server.admin.seed_plan import SeedPlan
from server.redis_client import glob_escape, unlink_matching
from server.services.groups import GROUP_LIST
from server.services.messages import MESSAGE_LIST
from server.store import accounts
from server.store import groups as group_repo
from server.store import messages as message_repo
from server.store.listing import AnySelect, ListSpec, parse_list_query
from server.store.models import Message

BUDGET_P95_MS = 50.0
EXPORT_BUDGET_S = 5.0
UNREAD_GROUPS = 50
UNREAD_LEFT = 20
"""Messages each of the heavy person's groups leaves unread (a person who keeps up)."""
HEAVY = 0
"""Seeded person 0: owns the busy group 0, so writes a share of its messages."""
BUSY = 0
PAGE = 50
SEARCH_WORDS = (
    "study",
    "whatever",
    "economy",
    "finally",
    "participant",
    "remember",
    "television",
    "something",
)
GROUP_WORDS = ("science", "solution", "mathematics", "system", "network", "history")


@dataclass(frozen=True, slots=True)
class Read:
    """One read path: its name and the request it makes each time."""

    name: str
    request: Callable[[random.Random], tuple[str, dict[str, str]]]


@dataclass
class Result:
    """Timings of one read, in seconds."""

    name: str
    seconds: list[float] = field(default_factory=list)
    budget_s: float = BUDGET_P95_MS / 1000
    quantile: float = 0.95

    def at(self, q: float) -> float:
        """The ``q`` quantile (nearest rank)."""
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def ok(self) -> bool:
        """Whether the budgeted quantile is under budget."""
        return self.at(self.quantile) < self.budget_s

    def line(self) -> str:
        """One row of the report, in milliseconds."""
        ms = [self.at(q) * 1000 for q in (0.5, 0.95, 0.99)] + [max(self.seconds) * 1000]
        budget = f"p{round(self.quantile * 100)} < {self.budget_s * 1000:.0f} ms"
        verdict = "ok" if self.ok else "MISSED"
        figures = " ".join(f"{value:9.1f}" for value in ms)
        return f"{self.name:<34} {len(self.seconds):5d} {figures}   {budget:<16} {verdict}"


def database_url(name: str) -> str:
    """The URL of database ``name`` on the benchmark's PostgreSQL."""
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def prepare(name: str, plan: SeedPlan) -> None:
    """Create the database if missing, migrate it, seed what ``plan`` lacks, vacuum."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await asyncio.to_thread(_migrate_and_seed, name, plan)
    connection = await asyncpg.connect(database_url(name))
    try:  # the steady state autovacuum keeps: statistics and the visibility map up to date
        await connection.execute("VACUUM (ANALYZE) messages, study_groups, memberships, users")
    finally:
        await connection.close()


def _migrate_and_seed(name: str, plan: SeedPlan) -> None:
    env = {**os.environ, "ENV": "dev", "DATABASE_URL": database_url(name)}
    run = [sys.executable, "-m"]
    subprocess.run([*run, "alembic", "upgrade", "head"], env=env, cwd=ROOT, check=True)  # noqa: S603
    seed = [
        *run,
        "server.admin",
        "seed",
        f"--users={plan.users}",
        f"--groups={plan.groups}",
        f"--messages={plan.messages}",
    ]
    subprocess.run(seed, env=env, cwd=ROOT, check=True)  # noqa: S603


@dataclass
class Node:
    """One node on the benchmark database, with its own Redis key prefix."""

    database: str
    folder: Path
    port: int = field(default_factory=free_port)
    prefix: str = field(default_factory=lambda: f"sbreads:{uuid.uuid4().hex[:8]}:")
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the node listens."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the node and wait until it is ready.

        Raises:
            RuntimeError: it exited or was not ready in 60 s.
        """
        process = self._spawn()
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"the node exited; see {self.folder / 'node.log'}")
                try:
                    if (await http.get(f"{self.url}/health/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the node was not ready in 60 s")

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "ENV": "dev",
            "DATABASE_URL": database_url(self.database),
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": self.prefix,
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(self.folder / "media"),
            "RATE_LIMIT_USER": "1000000/60",
            "RATE_LIMIT_AUTH": "1000000/60",
        }
        command = [sys.executable, "-m", "server.serve", "--host", "127.0.0.1"]
        with (self.folder / "node.log").open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [*command, "--port", str(self.port)], env=env, cwd=ROOT, stdout=log, stderr=log
            )
        return self.process

    async def stop(self) -> None:
        """Stop the node and remove its Redis keys."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        redis = Redis.from_url(REDIS_URL)
        try:
            await unlink_matching(redis, f"{glob_escape(self.prefix)}*")
        finally:
            await redis.aclose()


async def sign_in(http: httpx.AsyncClient) -> dict[str, str]:
    """The heavy person's authorisation header."""
    login = await http.post(
        "/api/v1/auth/login",
        json={"email": seed_plan.email(HEAVY), "password": seed_plan.PASSWORD},
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['data']['access_token']}"}


async def settle_heavy_person(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Join public groups until 50, then leave ``UNREAD_LEFT`` unread in each."""
    unread = (await http.get("/api/v1/users/me/unread", headers=headers)).json()["data"]
    mine = {row["group_id"] for row in unread}
    group = 0
    while len(mine) < UNREAD_GROUPS:
        group_id = str(seed_plan.group_id(group))
        group += 1
        if group_id in mine or SeedPlan.is_private(group - 1):
            continue
        joined = await http.post(f"/api/v1/study-groups/{group_id}/join", headers=headers)
        if joined.status_code == 200:
            mine.add(group_id)
    unread = (await http.get("/api/v1/users/me/unread", headers=headers)).json()["data"]
    for row in unread:
        seq = max(0, row["last_seq"] - UNREAD_LEFT)
        await http.put(
            f"/api/v1/study-groups/{row['group_id']}/read", headers=headers, json={"seq": seq}
        )


def reads(plan: SeedPlan) -> list[Read]:
    """The timed reads (the export apart)."""
    busy = f"/api/v1/study-groups/{seed_plan.group_id(BUSY)}/messages"
    depth = plan.messages_in(BUSY)
    return [
        Read("history, first page", lambda _r: (busy, {"page_size": str(PAGE)})),
        Read(
            "history, deep (before_seq)",
            lambda r: (busy, {"page_size": str(PAGE), "before_seq": str(r.randint(2, depth))}),
        ),
        Read(
            "message search, busy group",
            lambda r: (busy, {"search": r.choice(SEARCH_WORDS), "page_size": "20"}),
        ),
        Read(
            "groups: search + sort",
            lambda r: (
                "/api/v1/study-groups",
                {"search": r.choice(GROUP_WORDS), "sort": r.choice(("name", "-member_count"))},
            ),
        ),
        Read("unread counts, 50 groups", lambda _r: ("/api/v1/users/me/unread", {})),
    ]


async def time_read(
    http: httpx.AsyncClient, headers: dict[str, str], read: Read, count: int, rng: random.Random
) -> Result:
    """``count`` sequential requests after a few unmeasured ones."""
    result = Result(read.name)
    for index in range(count + 10):
        path, params = read.request(rng)
        started = time.perf_counter()
        response = await http.get(path, params=params, headers=headers)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if index >= 10:
            result.seconds.append(elapsed)
    return result


async def time_export(http: httpx.AsyncClient, headers: dict[str, str], count: int) -> Result:
    """Download the heavy person's export ``count`` times; the budget is on the slowest."""
    result = Result("export of the heavy person", budget_s=EXPORT_BUDGET_S, quantile=1.0)
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        async with http.stream("GET", "/api/v1/users/me/export", headers=headers) as response:
            response.raise_for_status()
            size = sum([len(piece) async for piece in response.aiter_raw()])
        result.seconds.append(time.perf_counter() - started)
    print(f"export: {size / 1e6:.1f} MB")
    return result


def _windowed(statement: AnySelect, spec: ListSpec, **params: str) -> AnySelect:
    query = parse_list_query(params, spec, seed_plan.user_id(HEAVY))
    return statement.where(*query.where).order_by(*query.order_by).limit(query.page_size)


def _counted(statement: AnySelect, spec: ListSpec, **params: str) -> AnySelect:
    query = parse_list_query(params, spec, seed_plan.user_id(HEAVY))
    return select(func.count()).select_from(statement.where(*query.where).subquery())


def explained(plan: SeedPlan) -> dict[str, AnySelect]:
    """The SQL behind each read, as the node's code builds it."""
    heavy = seed_plan.user_id(HEAVY)
    busy = message_repo.messages_of(seed_plan.group_id(BUSY))
    deep = busy.where(Message.seq < plan.messages_in(BUSY) // 3)
    visible = group_repo.groups_visible_to(heavy)
    search = {"search": SEARCH_WORDS[0]}
    return {
        "history, first page": _windowed(busy, MESSAGE_LIST, page_size=str(PAGE)),
        "history: total": _counted(busy, MESSAGE_LIST),
        "history, deep (before_seq)": _windowed(deep, MESSAGE_LIST, page_size=str(PAGE)),
        "message search: page": _windowed(busy, MESSAGE_LIST, **search),
        "message search: total": _counted(busy, MESSAGE_LIST, **search),
        "groups: page": _windowed(visible, GROUP_LIST, search=GROUP_WORDS[0], sort="name"),
        "groups: total": _counted(visible, GROUP_LIST, search=GROUP_WORDS[0]),
        "unread counts": group_repo.unread_statement(heavy),
        "export: messages": accounts.export_sections(heavy)["messages"],
    }


async def explain(name: str, statements: dict[str, AnySelect]) -> None:
    """Print ``EXPLAIN ANALYZE`` of each statement."""
    connection = await asyncpg.connect(database_url(name))
    try:
        for title, statement in statements.items():
            sql = str(
                statement.compile(
                    dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                    compile_kwargs={"literal_binds": True},
                )
            ).replace("%%", "%")
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}")
            print(f"\n-- {title}")
            print("\n".join(f"   {row[0]}" for row in rows))
    finally:
        await connection.close()


async def bench(args: argparse.Namespace) -> bool:
    """Prepare, start a node, time every read, explain; whether every budget was met."""
    plan = SeedPlan(args.users, args.groups, messages=args.messages)
    if not args.no_seed:
        await prepare(args.database, plan)
    rng = random.Random(2026)  # nosec B311 - not for security
    with TemporaryDirectory(prefix="bench-reads-") as folder:
        node = Node(args.database, Path(folder))
        try:
            await node.start()
            async with httpx.AsyncClient(base_url=node.url, timeout=60) as http:
                headers = await sign_in(http)
                await settle_heavy_person(http, headers)
                results = [
                    await time_read(http, headers, read, args.requests, rng) for read in reads(plan)
                ]
                results.append(await time_export(http, headers, args.exports))
        finally:
            await node.stop()
    print(f"\n{'read':<34} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    print("\n".join(result.line() for result in results))
    await explain(args.database, explained(plan))
    return all(result.ok for result in results)


async def drop(name: str) -> None:
    """Drop the benchmark database."""
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _main(args: argparse.Namespace) -> int:
    try:
        ok = await bench(args)
    finally:
        if args.drop:
            await drop(args.database)
    print("\nevery budget met" if ok else "\nBUDGET MISSED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse options and run the benchmark; 1 when a budget is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", default="bench_reads", help="database name (created)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per read")
    parser.add_argument("--exports", type=int, default=5, help="timed export downloads")
    parser.add_argument("--no-seed", action="store_true", help="use the database as it is")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
