"""Bring up a benchmark cluster on 127.0.0.1: a fresh database, a Redis prefix, N nodes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from scripts.redis_cluster import LocalCluster, free_base_port

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def write_syscalls(pid: int) -> int:
    """Write system calls a process made so far (``syscw`` of ``/proc/<pid>/io``).

    Socket writes of a node are most of them: per delivery, they tell how well frames were
    coalesced (several frames for one socket in one write).
    """
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def run_delay_seconds(pid: int) -> float:
    """Time a process spent runnable but waiting for a CPU so far (``/proc/<pid>/schedstat``).

    On a shared machine this tells a slow process from a starved one.
    """
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Node:
    """One node process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        """HTTP root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        """Socket endpoint."""
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"


@dataclass
class Cluster:
    """A database, a Redis namespace and the nodes using them."""

    database: str
    prefix: str
    nodes: list[Node] = field(default_factory=list)
    logs: Path = ROOT / "loadtests" / "results"
    env: dict[str, str] = field(default_factory=dict)
    """The nodes' environment."""

    @property
    def database_url(self) -> str:
        """The cluster database, as a libpq URL."""
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"

    @classmethod
    async def start(cls, count: int, **env: str) -> Cluster:
        """Create the database, migrate, start ``count`` nodes and wait until they answer."""
        name = f"sbbench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        cluster = cls(name, f"sbbench:{uuid.uuid4().hex[:8]}:")
        cluster.logs.mkdir(parents=True, exist_ok=True)
        cluster.env = base = {
            **os.environ,
            "DATABASE_URL": cluster.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": cluster.prefix,
            "BCRYPT_ROUNDS": "4",
            "RATE_LIMIT_AUTH": "1000000/60",
            "RATE_LIMIT_USER": "1000000/60",
            "RATE_LIMIT_ANON": "1000000/60",
            "WS_MESSAGE_RATE": "100000",
            "WS_MESSAGE_BURST": "100000",
            "WS_FRAME_RATE": "100000",
            "WS_FRAME_BURST": "100000",
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(cluster.logs / "media"),
            **env,
        }
        await asyncio.to_thread(_migrate, base)
        for index in range(count):
            cluster.nodes.append(_spawn(base, cluster.logs / f"node{index}.log", free_port()))
        for node in cluster.nodes:
            await _wait_healthy(node)
        return cluster

    async def restart(self, index: int, timeout: float = 40.0) -> None:
        """SIGTERM node ``index``, wait for it to exit, start it again on its port."""
        old = self.nodes[index]
        old.process.terminate()
        await asyncio.to_thread(old.process.wait, timeout)
        self.nodes[index] = _spawn(self.env, self.logs / f"node{index}-restarted.log", old.port)
        await _wait_healthy(self.nodes[index])

    async def stop(self) -> None:
        """Stop the nodes, drop the database and the Redis keys."""
        for node in self.nodes:
            node.process.terminate()
        for node in self.nodes:
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:  # a defect of the node, not of the benchmark
                print(f"WARNING: node on port {node.port} still up 30 s after SIGTERM: killed")
                node.process.kill()
                node.process.wait(10)
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        await admin.close()
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=f"{self.prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()


@asynccontextmanager
async def redis_cluster() -> AsyncIterator[LocalCluster]:
    """A Redis Cluster of the run (3 primaries + 3 replicas, ``make cluster``'s kit), free ports.

    Its data lives in a temporary folder, removed with it.
    """
    folder = Path(tempfile.mkdtemp(prefix="sbbench-cluster-"))
    cluster = await asyncio.to_thread(LocalCluster(folder, free_base_port()).start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(folder, ignore_errors=True)


def on_cluster(cluster: LocalCluster, **env: str) -> dict[str, str]:
    """Node settings to run on ``cluster`` (``REDIS_CLUSTER=true``), plus ``env``."""
    return {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true", **env}


@dataclass
class PrimaryLoad:
    """Each primary's Redis CPU (``/proc/<pid>/stat``) and commands over a stretch of a run."""

    cluster: LocalCluster
    start: dict[int, tuple[int, float, int]] = field(default_factory=dict)
    """Port -> (pid, CPU seconds, commands processed) at the start."""

    @classmethod
    def begin(cls, cluster: LocalCluster) -> PrimaryLoad:
        """Read every primary now."""
        load = cls(cluster)
        for node in cluster.live_nodes():
            pid = node.pid()
            if pid is not None and node.me().is_primary:
                load.start[node.port] = (pid, cpu_seconds(pid), _commands(cluster, node.port))
        return load

    def end(self) -> dict[int, dict[str, float]]:
        """Port -> CPU seconds, share of the primaries' CPU, and commands since ``begin``."""
        used = {
            port: (cpu_seconds(pid) - cpu, _commands(self.cluster, port) - commands)
            for port, (pid, cpu, commands) in self.start.items()
        }
        total = sum(cpu for cpu, _ in used.values()) or float("nan")
        return {
            port: {"cpu_s": round(cpu, 2), "cpu_share": round(cpu / total, 3), "commands": n}
            for port, (cpu, n) in used.items()
        }


def _commands(cluster: LocalCluster, port: int) -> int:
    return int(cluster.node(port).info("stats")["total_commands_processed"])


def _migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)  # noqa: S603


def _spawn(env: dict[str, str], log_path: Path, port: int) -> Node:
    command = [sys.executable, "-m", "server.serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    return Node(port, process)


async def _wait_healthy(node: Node) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{node.http}/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"node on port {node.port} did not start")


async def register_users(base_url: str, count: int, concurrency: int = 20) -> list[tuple[str, str]]:
    """Register and log in ``count`` users; return ``(user_id, access_token)`` pairs."""
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def one(index: int) -> tuple[str, str]:
            async with slots:
                tag = uuid.uuid4().hex[:10]
                body = {
                    "email": f"b{tag}@bench.example",
                    "username": f"b_{tag}",
                    "password": "bench-passphrase-123",
                }
                created = await http.post("/api/v1/auth/register", json=body)
                created.raise_for_status()
                login = await http.post(
                    "/api/v1/auth/login",
                    json={"email": body["email"], "password": body["password"]},
                )
                login.raise_for_status()
                return created.json()["data"]["id"], login.json()["data"]["access_token"]

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def group_with_members(base_url: str, owner_token: str, tokens: list[str]) -> str:
    """A public group everyone joins; returns its id."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post(
            "/api/v1/study-groups",
            headers={"Authorization": f"Bearer {owner_token}"},
            json={"name": "Benchmark", "visibility": "public"},
        )
        created.raise_for_status()
        group_id = str(created.json()["data"]["id"])
        for token in tokens:
            joined = await http.post(
                f"/api/v1/study-groups/{group_id}/join",
                headers={"Authorization": f"Bearer {token}"},
            )
            joined.raise_for_status()
        return group_id
