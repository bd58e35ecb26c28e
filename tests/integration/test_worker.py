"""The Procfile's worker line: taskiq consumes jobs the app queues, with the app's services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, update

from server.store.base import utcnow
from server.store.models import RefreshToken
from server.tasks.broker import build_broker
from server.tasks.jobs import register_jobs
from tests.factories.users import register
from tests.fixtures.processes import ROOT
from tests.fixtures.server import RunningServer
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings

pytestmark = pytest.mark.slow


async def _expired_tokens(node: RunningServer, user_id: str) -> int:
    async with node.services.db.session() as session:
        count = await session.scalar(
            select(func.count()).where(
                RefreshToken.user_id == uuid.UUID(user_id), RefreshToken.expires_at < utcnow()
            )
        )
    return int(count or 0)


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "server.tasks.worker:broker",
        "--workers",
        "1",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


async def test_worker_runs_the_housekeeping_job(
    node: RunningServer,
    client: httpx.AsyncClient,
    pg_url: str,
    tmp_path: Path,
    own_prefix: str,
) -> None:
    """An expired session is purged by the worker process after the job is queued."""
    payload = await register(client)
    await client.post(
        "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
    )
    async with node.services.db.session() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == uuid.UUID(payload["id"]))
            .values(expires_at=utcnow() - timedelta(days=1))
        )
    assert await _expired_tokens(node, payload["id"]) == 1

    prefix = own_prefix
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }
    worker = _start_worker(env, tmp_path / "worker.log")
    redis = Redis.from_url(REDIS_URL)
    broker = build_broker(make_settings(pg_url, REDIS_URL, prefix, tmp_path))
    register_jobs(broker)
    try:
        for _ in range(200):  # until the worker has created its consumer group
            with contextlib.suppress(ResponseError):
                if await redis.xinfo_groups(f"{prefix}tasks"):
                    break
            await asyncio.sleep(0.1)
        await broker.startup()
        task = broker.find_task("sessions.purge_expired")
        assert task is not None
        await task.kiq()
        for _ in range(200):
            if await _expired_tokens(node, payload["id"]) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _expired_tokens(node, payload["id"]) == 0, (
            tmp_path / "worker.log"
        ).read_text()
    finally:
        await broker.shutdown()
        await redis.aclose()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
