"""Slow consumers, token expiry and the auth deadline, each on a node configured for it."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.factories.users import account
from tests.fixtures.server import serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings
from tests.fixtures.wsclient import socket

pytestmark = pytest.mark.slow


async def test_slow_consumer_is_closed_with_4010_and_others_keep_up(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """A client that stops reading is closed with 4010; a reading client gets everything, fast."""
    settings = make_settings(
        pg_url, REDIS_URL, own_prefix, tmp_path,
        ws_queue_max_frames=100, ws_message_rate=100000.0, ws_message_burst=100000,
        ws_frame_rate=100000.0, ws_frame_burst=100000,
    )  # fmt: skip
    total = 3000
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        sender, fast, slow = await account(http), await account(http), await account(http)
        created = await http.post(
            "/api/v1/study-groups",
            headers=sender.headers,
            json={"name": "Slow", "visibility": "public"},
        )
        group = created.json()["data"]["id"]
        for user in (fast, slow):
            await http.post(f"/api/v1/study-groups/{group}/join", headers=user.headers)
        url = f"{node.ws_url}/api/v1/ws"
        async with (
            socket(url, sender.token) as s,
            socket(url, fast.token) as f,
            socket(url, slow.token, max_queue=1, receive_buffer=4096) as sl,
        ):
            await f.subscribe(group)
            await sl.subscribe(group)
            body = "x" * 4000

            async def produce() -> None:
                for i in range(total):
                    await s.send(
                        {"type": "send", "group_id": group, "body": body, "client_msg_id": f"c{i}"}
                    )
                await s.collect("ack", total, timeout=120)

            async def consume() -> list[float]:
                arrivals = []
                for _ in range(total):
                    await f.expect("message", timeout=30)
                    arrivals.append(time.monotonic())
                return arrivals

            async def close_seen() -> int | None:
                # The stalled client reads once the node has decided on 4010: a peer that takes
                # no close frame within 10 s is aborted, and on a busy machine the other two
                # tasks can outlast that (the close then came without a code).
                async with asyncio.timeout(120):
                    while _slow_closes() == closes_before:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                return await sl.closed_with(timeout=30)

            closes_before = _slow_closes()
            _, arrivals, code = await asyncio.gather(produce(), consume(), close_seen())
            assert len(arrivals) == total
            # Never waiting on the stalled client: no pause anywhere near the 10 s a close to
            # a stuck peer may take (how fast is the benchmarks' business, not this test's).
            assert max(b - a for a, b in itertools.pairwise(arrivals)) < 3.0
            assert code == 4010


def _slow_closes() -> float:
    """4010 closes so far by the nodes in this process."""
    return REGISTRY.get_sample_value("studybuddy_ws_slow_consumer_closes_total") or 0.0


async def test_socket_closes_when_its_token_expires(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """An unrefreshed token ends the socket with 4001 when REST stops accepting it too.

    That is its expiry plus the 5 s leeway for clock skew: a token just past its ``exp``
    gets ``ready`` and a few seconds to refresh, not ``ready`` and a close at once.
    """
    settings = make_settings(pg_url, REDIS_URL, own_prefix, tmp_path, access_token_ttl_s=2)
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        user = await account(http)
        await asyncio.sleep(3)  # past the token's exp, within the leeway
        assert (await http.get("/api/v1/users/me", headers=user.headers)).status_code == 200
        async with socket(f"{node.ws_url}/api/v1/ws", user.token) as ws:
            assert ws.ready["type"] == "ready"
            started = time.monotonic()
            assert await ws.closed_with(timeout=10) == 4001
            assert 2.5 < time.monotonic() - started < 6
        assert (await http.get("/api/v1/users/me", headers=user.headers)).status_code == 401


async def test_no_auth_frame_within_the_deadline_closes_4001(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Silence after connecting ends with 4001 once the auth deadline passes."""
    settings = make_settings(pg_url, REDIS_URL, own_prefix, tmp_path, ws_auth_timeout_s=0.5)
    async with serve(settings) as node, socket(f"{node.ws_url}/api/v1/ws") as ws:
        assert await ws.closed_with(timeout=5) == 4001


async def test_allowed_browser_origin_connects(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """An Origin listed in CORS_ORIGINS is accepted."""
    settings = make_settings(
        pg_url,
        REDIS_URL,
        own_prefix,
        tmp_path,
        cors_origins=["https://app.example"],
    )
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        user = await account(http)
        async with socket(
            f"{node.ws_url}/api/v1/ws", user.token, origin="https://app.example"
        ) as ws:
            assert ws.ready["user_id"] == user.id


async def test_a_full_node_makes_room_by_closing_a_silent_socket(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Room for one, taken by a socket that sent nothing: a newcomer gets in, it gets 1013.

    A client sends ``auth`` as it connects; sockets opened and left silent cannot hold a
    node's admission for the 5 s of the auth deadline.
    """
    settings = make_settings(
        pg_url, REDIS_URL, own_prefix, tmp_path, ws_admission_concurrency=1, ws_admission_queue=0
    )
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        user = await account(http)
        url = f"{node.ws_url}/api/v1/ws"
        async with socket(url) as silent:  # connected, nothing sent
            async with socket(url, user.token) as newcomer:
                assert newcomer.ready["user_id"] == user.id
                assert await silent.closed_with() == 1013
