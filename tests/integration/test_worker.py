"""The Procfile's worker line: taskiq consumes jobs the app queues, with the app's services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, update

from server.security.signing import verify
from server.store.base import utcnow
from server.store.models import RefreshToken
from server.tasks.broker import build_broker
from server.tasks.jobs import register_jobs
from tests.factories.groups import create_group, post_message
from tests.factories.users import account, register
from tests.fixtures.processes import start_taskiq, stop_group
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings
from tests.fixtures.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.slow


async def _expired_tokens(node: RunningServer, user_id: str) -> int:
    async with node.db.session() as session:
        count = await session.scalar(
            select(func.count()).where(
                RefreshToken.user_id == uuid.UUID(user_id), RefreshToken.expires_at < utcnow()
            )
        )
    return int(count or 0)


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    return start_taskiq(["worker", "server.tasks.worker:broker", "--workers", "1"], env, log_path)


async def test_worker_runs_the_housekeeping_job(
    node: RunningServer,
    client: httpx.AsyncClient,
    pg_url: str,
    tmp_path: Path,
    own_prefix: str,
) -> None:
    """A session expired past its retention is purged by the worker once the job is queued."""
    payload = await register(client)
    await client.post(
        "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
    )
    async with node.db.session() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == uuid.UUID(payload["id"]))
            .values(expires_at=utcnow() - timedelta(days=31))  # RETENTION_SESSIONS_DAYS 30
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
        task = broker.find_task("retention.purge")
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
        stop_group(worker)


async def test_worker_delivers_message_webhooks(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Redis queue: a node's persister stages message.created, the worker posts and retries."""
    hosts = {"webhook_allowed_hosts": ["127.0.0.1/32"], "webhook_retry_base_s": 0.05}
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": own_prefix,
        "LOG_LEVEL": "WARNING",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1/32",
        "WEBHOOK_RETRY_BASE_S": "0.05",
    }
    worker = _start_worker(env, tmp_path / "worker.log")
    redis = Redis.from_url(REDIS_URL)
    try:
        async with (
            serve(make_settings(pg_url, REDIS_URL, own_prefix, tmp_path, **hosts)) as node,
            webhook_receiver() as receiver,
            httpx.AsyncClient(base_url=node.base_url, timeout=10) as http,
        ):
            for _ in range(200):  # until the worker has created its consumer group
                with contextlib.suppress(ResponseError):
                    if await redis.xinfo_groups(f"{own_prefix}tasks"):
                        break
                await asyncio.sleep(0.1)
            receiver.statuses = [503]
            owner = await account(http)
            group = await create_group(http, owner)
            created = await http.post(
                "/api/v1/webhooks",
                headers=owner.headers,
                json={
                    "url": receiver.url(),
                    "events": ["message.created"],
                    "group_id": group["id"],
                },
            )
            assert created.status_code == 201, created.text
            message = await post_message(http, owner, group["id"], "to the worker")
            try:
                first, second = await receiver.wait_for(2, timeout=20)
            except TimeoutError:
                pytest.fail((tmp_path / "worker.log").read_text())
            assert first.body == second.body
            assert second.json()["data"]["id"] == message["id"]
            assert second.json()["type"] == "message.created"
            assert verify(
                created.json()["data"]["secret"],
                second.headers["x-studybuddy-signature"],
                second.body,
                int(time.time()),
            )
    finally:
        await redis.aclose()
        stop_group(worker)
