"""The servers a benchmark can drive: StudyBuddy, or Go's centrifuge as the yardstick.

Both are started on 127.0.0.1 as N node processes on one Redis (127.0.0.1:6379, a fresh key
prefix per run), driven by the same load client (``loadtests/lean_client.py``, one dialect
each), and measured the same way (the node processes' CPU from ``/proc``). What only one of
them has stays here: StudyBuddy's database, users, group membership, REST history and
Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
from redis.asyncio import Redis

from loadtests.cluster import (
    REDIS_URL,
    ROOT,
    Cluster,
    free_port,
    group_with_members,
    register_users,
)
from loadtests.history import HistoryWatch
from loadtests.lean_client import CENTRIFUGE, STUDYBUDDY, Dialect

CENTRIFUGE_BINARY = ROOT / "loadtests" / "yardstick" / "bin" / "centrifuge_node"
"""Built by ``loadtests/yardstick/build.sh`` (``make yardstick``)."""


@dataclass(frozen=True)
class Identity:
    """Who a socket is: a registered user and its access token, or just a name (centrifuge)."""

    user_id: str
    token: str = ""


class Watch:
    """Something watched while traffic runs; reports after it (nothing, by default)."""

    async def finish(self, sent: int) -> dict[str, Any]:
        """Stop watching once ``sent`` messages were sent; the figures it gathered."""
        del sent
        return {}


class Target(ABC):
    """A running set of nodes of one server."""

    name: ClassVar[str]
    dialect: ClassVar[Dialect]

    @classmethod
    @abstractmethod
    async def start(cls, count: int, **env: str) -> Target:
        """Start ``count`` nodes (``env``: StudyBuddy settings) and wait until they answer."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the nodes and remove what the run left in Redis (and PostgreSQL)."""

    @property
    @abstractmethod
    def urls(self) -> list[str]:
        """Each node's WebSocket endpoint."""

    @property
    @abstractmethod
    def pids(self) -> list[int]:
        """The node processes, whose CPU and memory are the server's."""

    @abstractmethod
    async def identities(self, count: int) -> list[Identity]:
        """``count`` users the sockets can be."""

    @abstractmethod
    async def group(self, owner: Identity, members: list[Identity]) -> str:
        """A group (channel) everyone may subscribe and send to."""

    async def watch(self, group: str) -> Watch:
        """Start watching ``group`` while traffic runs."""
        del group
        return Watch()

    async def server_side(self) -> dict[str, Any]:
        """The nodes' own view of the run (their metrics), if they have one."""
        return {}


@dataclass
class _HistoryWatch(Watch):
    """Acked messages reaching REST history (``loadtests/history.py``)."""

    history: HistoryWatch
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def finish(self, sent: int) -> dict[str, Any]:
        """Wait (up to 15 s) until every sent message is in history."""
        await self.history.wait_for(sent, timeout=15)
        self.stop.set()
        if self.task is not None:
            await self.task
        lags = sorted(self.history.lags)

        def quantile(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")

        return {
            "in_history": len(lags),
            "history_p50_ms": quantile(0.50),
            "history_p99_ms": quantile(0.99),
        }


class StudyBuddy(Target):
    """StudyBuddy nodes (``python -m server.serve``) on a fresh PostgreSQL database."""

    name = "studybuddy"
    dialect = STUDYBUDDY

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @classmethod
    async def start(cls, count: int, **env: str) -> StudyBuddy:
        """A fresh database, migrations, ``count`` nodes."""
        return cls(await Cluster.start(count, **env))

    async def stop(self) -> None:
        """Stop the nodes, drop the database and the Redis keys."""
        await self.cluster.stop()

    @property
    def urls(self) -> list[str]:
        """Each node's ``/api/v1/ws``."""
        return [node.ws for node in self.cluster.nodes]

    @property
    def pids(self) -> list[int]:
        """The uvicorn processes."""
        return [node.process.pid for node in self.cluster.nodes]

    async def identities(self, count: int) -> list[Identity]:
        """Registered, logged-in users (not timed by any scenario)."""
        users = await register_users(self.cluster.nodes[0].http, count)
        return [Identity(user_id, token) for user_id, token in users]

    async def group(self, owner: Identity, members: list[Identity]) -> str:
        """A public group the owner creates and every member joins."""
        tokens = [member.token for member in members]
        return await group_with_members(self.cluster.nodes[0].http, owner.token, tokens)

    async def watch(self, group: str) -> Watch:
        """Poll PostgreSQL for the group's messages (ack to REST history)."""
        watch = _HistoryWatch(HistoryWatch(self.cluster.database_url, group))
        watch.task = asyncio.create_task(watch.history.run(watch.stop))
        return watch

    async def server_side(self) -> dict[str, Any]:
        """The nodes' fan-out latency histogram and slow-consumer closes."""
        lines: list[str] = []
        async with httpx.AsyncClient() as http:
            for node in self.cluster.nodes:
                lines += (await http.get(f"{node.http}/health/metrics")).text.splitlines()
        p50, p99 = _server_latency(lines)
        return {
            "server_p50_ms": p50,
            "server_p99_ms": p99,
            "slow_consumer_closes": _counter(lines, "studybuddy_ws_slow_consumer_closes_total"),
        }


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


@dataclass
class Centrifuge(Target):
    """Our centrifuge node (``loadtests/yardstick/centrifuge_node``): bare fan-out, no auth."""

    name: ClassVar[str] = "centrifuge"
    dialect: ClassVar[Dialect] = CENTRIFUGE
    prefix: str
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    async def start(cls, count: int, **env: str) -> Centrifuge:
        """Start ``count`` processes of the built binary on one Redis (``env`` is ignored)."""
        del env
        if not CENTRIFUGE_BINARY.is_file():
            raise SystemExit(
                f"{CENTRIFUGE_BINARY} is missing: run loadtests/yardstick/build.sh (make yardstick)"
            )
        target = cls(prefix=f"ysbench.{uuid.uuid4().hex[:8]}")
        logs = ROOT / "loadtests" / "results"
        logs.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            port = free_port()
            target.ports.append(port)
            target.processes.append(_spawn_go(port, target.prefix, logs / f"centrifuge{index}.log"))
        try:
            for port in target.ports:
                await _wait_answering(f"http://127.0.0.1:{port}/health")
        except BaseException:
            await target.stop()
            raise
        return target

    async def stop(self) -> None:
        """Stop the processes; remove the run's Redis keys (there are none without presence)."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=f"{self.prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()

    @property
    def urls(self) -> list[str]:
        """Each node's ``/connection/websocket``."""
        return [f"ws://127.0.0.1:{port}{self.dialect.path}" for port in self.ports]

    @property
    def pids(self) -> list[int]:
        """The Go processes."""
        return [process.pid for process in self.processes]

    async def identities(self, count: int) -> list[Identity]:
        """Names only: the node authenticates nobody."""
        return [Identity(f"u{index}") for index in range(count)]

    async def group(self, owner: Identity, members: list[Identity]) -> str:
        """A channel name: any connection may subscribe and publish."""
        del owner, members
        return f"bench-{uuid.uuid4().hex[:10]}"


def _spawn_go(port: int, prefix: str, log_path: Path) -> subprocess.Popen[bytes]:
    command = [str(CENTRIFUGE_BINARY), f"-port={port}", f"-redis={REDIS_URL}", f"-prefix={prefix}"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


async def _wait_answering(url: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


TARGETS: dict[str, type[Target]] = {t.name: t for t in (StudyBuddy, Centrifuge)}
