"""Product nodes as processes, as the Procfile runs them: ``python -m server.serve --port P``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def node_environment(database_url: str, redis_url: str, media_dir: Path) -> dict[str, str]:
    """The environment of the drill's nodes: its own services, fast bcrypt, generous limits."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_AUTH": "100000/60",
        "RATE_LIMIT_USER": "100000/60",
        "RATE_LIMIT_ANON": "100000/60",
        "WS_MESSAGE_RATE": "1000",
        "WS_MESSAGE_BURST": "1000",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
        "LOG_LEVEL": "WARNING",
        "MEDIA_DIR": str(media_dir),
        "SHUTDOWN_GRACE_S": "2",
    }


def migrate(env: dict[str, str]) -> None:
    """``alembic upgrade head``, the Procfile's release step."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


@dataclass
class Node:
    """One node on a fixed port (kept across restarts, as behind a load balancer)."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def http(self) -> str:
        """HTTP root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        """Socket endpoint."""
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def start(self) -> None:
        """Spawn the process (logs appended to ``log_path``)."""
        command = [sys.executable, "-m", "server.serve", "--host", "127.0.0.1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                [*command, "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, within_s: float = 60) -> None:
        """Wait until ``/health/ready`` answers 200."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"node exited:\n{self.log_path.read_text()[-3000:]}")
                try:
                    if (await http.get(f"{self.http}/health/ready")).status_code == httpx.codes.OK:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"node on port {self.port} not ready:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL (a node holds nothing that is not in Redis or PostgreSQL)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (the graceful path), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
