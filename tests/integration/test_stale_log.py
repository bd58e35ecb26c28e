"""A Redis log that went back in time (an old copy restored, a failover to a stale replica).

Its counter is behind what it handed out before. Two ways to find that out, both end with
numbering above everything the database holds and nothing stored twice under one seq:

- the counter is behind the recovery window's top: the append script refuses before it
  changes anything, and numbering jumps (nothing is lost);
- the recovery window lost the same writes: a seq is handed out again; the persister finds
  the database already holds it, logs and counts the lost message, and numbering jumps.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from server.realtime.floors import LOG_LOSSES, SEQ_BLOCK
from server.store.models import Message
from tests.factories.groups import post_message, public_group
from tests.factories.users import Account, account
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings


@pytest.fixture
async def node(pg_url: str, own_prefix: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """One node on PostgreSQL and Redis, with a key namespace of its own."""
    async with serve(make_settings(pg_url, REDIS_URL, own_prefix, tmp_path)) as running:
        yield running


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A plain client to reach behind the node's back."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _key(redis: Redis, prefix: str, kind: str, group: str) -> str:
    (key,) = [key async for key in redis.scan_iter(match=f"{prefix}*{kind}:{group}")]
    return key.decode()


async def _stored(node: RunningServer, group: str) -> dict[int, str]:
    """Each stored seq with its body, of the group's stored messages."""
    async with node.db.session() as session:
        rows = await session.execute(
            select(Message.seq, Message.body).where(Message.group_id == uuid.UUID(group))
        )
    return {seq: body for seq, body in rows.all()}


async def _three_stored(node: RunningServer) -> tuple[httpx.AsyncClient, Account, str]:
    client = httpx.AsyncClient(base_url=node.base_url, timeout=15)
    author = await account(client)
    group = await public_group(client, author)
    for body in ("one", "two", "three"):
        await post_message(client, author, group, body)
    assert await _stored(node, group) == {1: "one", 2: "two", 3: "three"}
    return client, author, group


async def test_a_counter_behind_the_window_jumps_before_handing_out_a_seq(
    node: RunningServer, redis: Redis, own_prefix: str
) -> None:
    """Counter set back to 1 with the window intact: the next send gets the ceiling + 1."""
    client, author, group = await _three_stored(node)
    await redis.set(await _key(redis, own_prefix, "seq", group), 1)
    losses = LOG_LOSSES._value.get()

    sent = await post_message(client, author, group, "after")

    assert sent["seq"] == SEQ_BLOCK + 1  # above the first block, reserved in the database
    assert (await _stored(node, group))[SEQ_BLOCK + 1] == "after"
    assert LOG_LOSSES._value.get() == losses + 1
    await client.aclose()


async def test_a_reused_seq_is_found_by_the_persister_and_numbering_jumps(
    node: RunningServer, redis: Redis, own_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Counter and window both went back: seq 2 is handed out again, found, and skipped past."""
    client, author, group = await _three_stored(node)
    await redis.set(await _key(redis, own_prefix, "seq", group), 1)
    window = await _key(redis, own_prefix, "rec", group)
    ((first_id, first),) = await redis.xrange(window, count=1)
    await redis.delete(window)
    await redis.xadd(window, first, id=first_id)  # the window as it was after seq 1

    reused = await post_message(client, author, group, "reused")
    assert reused["seq"] == 2
    after = await post_message(client, author, group, "after")

    stored = await _stored(node, group)
    assert after["seq"] > 3
    assert stored[after["seq"]] == "after"
    assert stored[2] == "two"  # the first message under a seq is the one kept
    assert "reused" not in stored.values()
    assert any("acked messages lost" in record.message for record in caplog.records)
    await client.aclose()
