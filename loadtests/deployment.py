"""A throw-away 2-node deployment on 127.0.0.1 for load tests, behind HAProxy.

What ``make loadtest`` starts, as the ``Procfile`` describes a deployment: the ``release``
line (``alembic upgrade head``) on a fresh PostgreSQL database, ``web`` nodes
(``python -m server.serve``, bound to 127.0.0.1 rather than the Procfile's 0.0.0.0) on one
Redis under a fresh key prefix, and the ``worker``. HAProxy (Debian's package) sits in
front: it forwards WebSocket upgrades, spreads connections over the nodes (least
connections) and sends ``X-Forwarded-For``; the nodes trust it (``TRUSTED_PROXIES``), so
the per-IP limits still see each simulated person's own address. Everything is removed
afterwards: processes, database, Redis keys.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from loadtests.cluster import ADMIN_URL, REDIS_URL, ROOT, free_port

PROXY_ADDRESS = "127.0.0.1"
"""HAProxy connects to the nodes from here; the nodes trust exactly this address."""
HAPROXY_CONFIG = """\
global
    maxconn 9000
    nbthread 1

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    timeout check 5s
    timeout http-keep-alive 60s

frontend studybuddy
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk GET /health/ready
    http-check expect status 200
{servers}
"""


def ensure_haproxy() -> str:
    """The path of ``haproxy``, installing Debian's package when missing and allowed.

    Raises:
        SystemExit: not installed and cannot be installed here.
    """
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            "make loadtest needs HAProxy in front of the nodes: install it "
            "(Debian/Ubuntu: sudo apt-get install -y haproxy) or pass HOST=http://... "
            "to test a deployment that is already running"
        )
    print("installing HAProxy (apt-get install -y haproxy)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = ["apt-get", "update", "-qq"]
    subprocess.run(update, check=False, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    install = ["apt-get", "install", "-y", "-qq", "haproxy"]
    subprocess.run(install, check=True, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    found = shutil.which("haproxy")
    if not found:
        raise SystemExit("apt-get installed haproxy but it is not on PATH")
    return found


@dataclass
class Deployment:
    """Nodes, worker and proxy of one load test, with their database and Redis prefix."""

    folder: Path
    nodes: int = 2
    bcrypt_rounds: int = 12
    database: str = field(default_factory=lambda: f"sbload_{uuid.uuid4().hex[:10]}")
    prefix: str = field(default_factory=lambda: f"sbload:{uuid.uuid4().hex[:8]}:")
    proxy_port: int = field(default_factory=free_port)
    node_ports: list[int] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """What clients use: the proxy."""
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def database_url(self) -> str:
        """The deployment's database."""
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"

    def env(self) -> dict[str, str]:
        """The nodes' and the worker's settings."""
        return {
            **os.environ,
            "ENV": "dev",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": self.prefix,
            "TRUSTED_PROXIES": PROXY_ADDRESS,
            "BCRYPT_ROUNDS": str(self.bcrypt_rounds),
            "LOG_LEVEL": "WARNING",
            "MEDIA_DIR": str(self.folder / "media"),
            "PYTHONPATH": str(ROOT),
        }

    async def start(self) -> None:
        """Database, release, worker, nodes, proxy; returns once the proxy says ready."""
        haproxy = ensure_haproxy()
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()
        self.run([sys.executable, "-m", "alembic", "upgrade", "head"])
        bin_dir = Path(sys.executable).parent
        self.spawn(
            "worker",
            [str(bin_dir / "taskiq"), "worker", "server.tasks.worker:broker", "--workers", "1"],
        )
        for index in range(self.nodes):
            port = free_port()
            self.node_ports.append(port)
            command = [
                sys.executable,
                "-m",
                "server.serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            self.spawn(f"node{index}", command)
        servers = "\n".join(
            f"    server node{i} 127.0.0.1:{port} check inter 2s fall 5 rise 1"
            for i, port in enumerate(self.node_ports)
        )
        config = self.folder / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.proxy_port, servers=servers))
        self.spawn("haproxy", [haproxy, "-f", str(config), "-db"])
        await self.wait_ready()

    def run(self, command: list[str]) -> None:
        """Run a one-off command with the deployment's settings (the release phase, a seed)."""
        subprocess.run(command, env=self.env(), cwd=ROOT, check=True)  # noqa: S603

    def spawn(self, name: str, command: list[str]) -> None:
        """Start a long-running process, its output in ``<name>.log``."""
        with (self.folder / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(  # noqa: S603
                command, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until every node and the proxy answer ``/health/ready``.

        Raises:
            RuntimeError: a process died or the deployment is not ready in time.
        """
        urls = [f"http://127.0.0.1:{port}" for port in self.node_ports] + [self.url]
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            for url in urls:
                while True:
                    self._check_alive()
                    try:
                        if (await http.get(f"{url}/health/ready")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url} not ready after {timeout} s; see {self.folder}")
                    await asyncio.sleep(0.2)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}); see {self.folder}/{name}.log"
                )

    def pid(self, name: str) -> int:
        """The process id of ``node0``, ``worker``, ``haproxy``..."""
        return self.processes[name].pid

    async def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), drop the database and the Redis keys."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await admin.close()
        redis = Redis.from_url(REDIS_URL)
        try:
            async for key in redis.scan_iter(match=f"{self.prefix}*", count=1000):
                await redis.delete(key)
        finally:
            await redis.aclose()
