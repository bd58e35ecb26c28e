"""An account's erasure reaches every copy of what the user typed, over real sockets and REST.

An author sends 3 messages over a socket, a webhook records them, a member has their profile
cached and has seen the messages live; then the author erases their account. A member who
re-subscribes with ``since_seq: 0`` (on the same socket, whose node saw the messages go by,
and on a new one) gets one ``message_deleted`` tombstone per seq, never the text; the
webhook's delivery records hold no text of theirs; the profile is not served from a cache;
no Redis key names them. In process, on one Redis and on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Connection, event, select, update

from server.security.crypto import SecretBox
from server.store.base import utcnow
from server.store.models import Message, PendingErasure, Webhook, WebhookDelivery
from tests.factories.groups import public_group
from tests.factories.users import Account, account
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.settings import make_settings
from tests.fixtures.wsclient import Socket, socket
from tests.integration.conftest import Realtime

TEXTS = ["first secret of mine", "second secret of mine", "third secret of mine"]


def metric(name: str, labels: dict[str, str]) -> float:
    """A counter's value in this process (the nodes under test run in it)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def replayed(ws: Socket, group: str, since_seq: int) -> tuple[list[dict[str, Any]], str]:
    """Subscribe with ``since_seq``: the frames replayed before ``subscribed``, and all raw."""
    await ws.send({"type": "subscribe", "group_id": group, "since_seq": since_seq})
    frames: list[dict[str, Any]] = []
    while True:
        frame = await ws.recv(timeout=10)
        if frame["type"] == "subscribed":
            assert frame["recovered"] is True, frame
            return frames, repr(frames)
        if frame["type"] in ("message", "message_deleted"):
            frames.append(frame)


async def add_webhook(rt: Realtime, group: str, owner: Account) -> uuid.UUID:
    """A ``message.created`` webhook of the group, written straight into the node's database.

    Its URL is a loopback one that delivery refuses, so each delivery stays a record only.
    """
    box = SecretBox(rt.node.node.settings.data_encryption_key)
    hook = Webhook(
        group_id=uuid.UUID(group),
        url="http://127.0.0.1:9/hook",
        events=["message.created"],
        secret=box.seal("s" * 32),
        created_by=uuid.UUID(owner.id),
    )
    async with rt.node.db.session() as session, session.begin():
        session.add(hook)
    return hook.id


async def stored(rt: Realtime, group: str, count: int) -> None:
    """Wait until ``count`` messages of the group are in the database."""
    async with asyncio.timeout(10):
        while True:
            async with rt.node.db.session() as session:
                rows = list(
                    await session.scalars(
                        select(Message.id).where(Message.group_id == uuid.UUID(group))
                    )
                )
            if len(rows) >= count:
                return
            await asyncio.sleep(0.1)


async def payloads(rt: Realtime, hook_id: uuid.UUID) -> list[dict[str, Any]]:
    """The payloads of the webhook's delivery records."""
    async with rt.node.db.session() as session:
        rows = await session.scalars(
            select(WebhookDelivery.payload).where(WebhookDelivery.webhook_id == hook_id)
        )
        return list(rows)


async def keys_naming(node: RunningServer, user_id: str) -> list[bytes]:
    """Redis keys of the node's prefix that name the user (none in process)."""
    redis, prefix = node.node.resources.redis, node.node.settings.redis_prefix
    if redis is None:
        return []
    return [key async for key in redis.scan_iter(match=f"{prefix}*{user_id}*", count=1000)]


@pytest.mark.parametrize("rt", ["memory", "redis", "cluster"], indirect=True)
async def test_erasure_leaves_tombstones_in_every_copy(rt: Realtime) -> None:
    """After the author's erasure, replays, webhook records, caches and Redis forget them."""
    owner, author, member = [await account(rt.http) for _ in range(3)]
    group = await public_group(rt.http, owner, author, member)
    hook_id = await add_webhook(rt, group, owner)
    profile = await rt.http.get(f"/api/v1/users/{author.id}", headers=member.headers)
    assert profile.status_code == 200  # now cached
    async with socket(rt.ws, member.token) as watcher, socket(rt.ws, author.token) as ws:
        await watcher.subscribe(group)
        acks = [await ws.send_message(group, text, f"c-{n}") for n, text in enumerate(TEXTS)]
        for ack in acks:
            await watcher.expect("message", seq=ack["seq"])
        await stored(rt, group, 3)
        assert any(p.get("body") in TEXTS for p in await payloads(rt, hook_id))

        gone = await rt.http.request(
            "DELETE", "/api/v1/users/me", headers=author.headers, json={"password": author.password}
        )
        assert gone.status_code == 204
        assert await ws.closed_with() is not None

        await watcher.send({"type": "unsubscribe", "group_id": group})
        await watcher.expect("unsubscribed", group_id=group)
        seen, raw = await replayed(watcher, group, 0)
        async with socket(rt.ws, member.token) as fresh:
            again, raw_again = await replayed(fresh, group, 0)

    expected = [
        {
            "type": "message_deleted",
            "group_id": group,
            "message_id": a["message_id"],
            "seq": a["seq"],
        }
        for a in acks
    ]
    assert seen == expected and again == expected
    assert not any(text in raw + raw_again for text in TEXTS)
    records = await payloads(rt, hook_id)
    assert records and all(p["body"] == "" and p["author_id"] is None for p in records)
    cached = await rt.http.get(f"/api/v1/users/{author.id}", headers=member.headers)
    assert cached.status_code == 404
    assert await keys_naming(rt.node, author.id) == []
    assert await pending(rt.node, author.id) == []


@pytest.mark.parametrize("rt", ["memory", "redis"], indirect=True)
async def test_members_sockets_hear_of_the_new_owner_then_that_the_erased_owner_left(
    rt: Realtime,
) -> None:
    """As a handover and a leave done by hand: role_changed to owner, then left (role null).

    Before, a connected client kept showing the erased user as a member, and as the owner,
    until it reloaded. A socket not subscribed to the group hears it too (member frames are
    user-directed).
    """
    owner, heir, other = [await account(rt.http) for _ in range(3)]
    group = await public_group(rt.http, owner, heir, other)
    async with socket(rt.ws, heir.token) as heirs, socket(rt.ws, other.token) as others:
        await heirs.subscribe(group)
        gone = await rt.http.request(
            "DELETE", "/api/v1/users/me", headers=owner.headers, json={"password": owner.password}
        )
        assert gone.status_code == 204, gone.text
        for ws in (heirs, others):
            heard = [await ws.expect("member"), await ws.expect("member")]  # in arrival order
            assert heard == [
                {
                    "type": "member",
                    "group_id": group,
                    "user_id": heir.id,
                    "action": "role_changed",
                    "role": "owner",
                },
                {
                    "type": "member",
                    "group_id": group,
                    "user_id": owner.id,
                    "action": "left",
                    "role": None,
                },
            ]


async def pending(node: RunningServer, user_id: str) -> list[PendingErasure]:
    """The user's erasure, while its copies outside the database are not all reached."""
    async with node.db.session() as session:
        return list(
            await session.scalars(
                select(PendingErasure).where(PendingErasure.user_id == uuid.UUID(user_id))
            )
        )


def kill_redis_once_the_erasure_commits(node: RunningServer, redis: OwnRedis) -> None:
    """Redis dies the moment the transaction that deletes a user row commits."""
    engine = node.db.engine.sync_engine

    def statement(conn: Connection, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("DELETE FROM USERS"):
            conn.info["deletes_user"] = True

    def commit(conn: Connection) -> None:
        if conn.info.pop("deletes_user", False):
            redis.kill()

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)


async def test_an_erasure_that_loses_redis_after_its_commit_is_finished_by_the_sweep(
    pg_url: str, owned_redis: OwnRedis, tmp_path: Path
) -> None:
    """Redis dies between the erasure's commit and its Redis part: 204 all the same.

    The account is gone, so a 503 would ask for a retry that cannot succeed. The copies stay
    staged until the sweep, with Redis back, erases them.
    """
    settings = make_settings(pg_url, owned_redis.url, f"sbtest:{uuid.uuid4().hex[:8]}:", tmp_path)
    async with (
        serve(settings) as node,
        httpx.AsyncClient(base_url=node.base_url, timeout=20) as http,
    ):
        author, member = await account(http), await account(http)
        group = await public_group(http, author, member)
        profile = await http.get(f"/api/v1/users/{author.id}", headers=member.headers)
        assert profile.status_code == 200  # now cached in Redis
        async with socket(f"{node.ws_url}/api/v1/ws", author.token) as ws:
            await ws.send_message(group, TEXTS[0], "c-0")  # a rate-limit bucket, a lease
        assert await keys_naming(node, author.id)
        retries = metric("studybuddy_erasure_follow_ups_total", {"result": "retry"})
        kill_redis_once_the_erasure_commits(node, owned_redis)

        gone = await http.request(
            "DELETE", "/api/v1/users/me", headers=author.headers, json={"password": author.password}
        )

        assert gone.status_code == 204
        assert metric("studybuddy_erasure_follow_ups_total", {"result": "retry"}) == retries + 1
        [staged] = await pending(node, author.id)
        assert str(staged.user_id) == author.id and staged.group_ids == [group]
        await owned_redis.astart()  # AOF on: the keys come back with it
        assert await keys_naming(node, author.id)
        await node.domain.erasures.sweep()
        assert await pending(node, author.id)  # staged just now: its request may be on it still
        async with node.db.session() as session, session.begin():
            await session.execute(
                update(PendingErasure)
                .where(PendingErasure.user_id == staged.user_id)
                .values(created_at=utcnow() - timedelta(minutes=2))
            )

        assert await node.domain.erasures.sweep() >= 1  # others staged long ago may go too

        assert await keys_naming(node, author.id) == []
        assert await pending(node, author.id) == []
        cached = await http.get(f"/api/v1/users/{author.id}", headers=member.headers)
        assert cached.status_code == 404
