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
from typing import Any

import pytest
from sqlalchemy import select

from server.security.crypto import SecretBox
from server.store.models import Message, Webhook, WebhookDelivery
from tests.factories.groups import public_group
from tests.factories.users import Account, account
from tests.fixtures.wsclient import Socket, socket
from tests.integration.conftest import Realtime

TEXTS = ["first secret of mine", "second secret of mine", "third secret of mine"]


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


async def keys_naming(rt: Realtime, user_id: str) -> list[bytes]:
    """Redis keys of the node's prefix that name the user (none in process)."""
    redis, prefix = rt.node.node.resources.redis, rt.node.node.settings.redis_prefix
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
    assert await keys_naming(rt, author.id) == []
