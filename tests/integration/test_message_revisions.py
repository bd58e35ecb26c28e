"""Replays show messages as history does after an edit or a deletion, over real sockets.

An author sends 3 messages, edits the second and deletes the third over REST. A member who
re-subscribes with ``since_seq: 0`` (on the socket whose node saw the messages go by, and on
a new one) gets the first as sent, the second with its new body and a ``message_deleted``
tombstone for the third: never the deleted text, never the old one. In process, on one
Redis and on a Redis Cluster.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from server.store import messages as repo
from tests.factories.groups import post_message, public_group
from tests.factories.users import account
from tests.fixtures.server import RunningServer
from tests.fixtures.wsclient import socket
from tests.integration.conftest import Realtime
from tests.integration.test_erasure import replayed, stored

GROUPS = "/api/v1/study-groups"
TEXTS = ["kept as sent", "a first draft", "said by mistake"]


async def test_replays_show_edits_and_deletions(rt: Realtime) -> None:
    """The window's frames follow history: new body for the edit, a tombstone for the delete."""
    author, member = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, author, member)
    async with socket(rt.ws, member.token) as watcher, socket(rt.ws, author.token) as ws:
        await watcher.subscribe(group)
        acks = [await ws.send_message(group, text, f"r-{n}") for n, text in enumerate(TEXTS)]
        for ack in acks:
            await watcher.expect("message", seq=ack["seq"])
        await stored(rt, group, 3)
        url = f"{GROUPS}/{group}/messages"
        edited = await rt.http.patch(
            f"{url}/{acks[1]['message_id']}", headers=author.headers, json={"body": "the final"}
        )
        assert edited.status_code == 200, edited.text
        deleted = await rt.http.delete(f"{url}/{acks[2]['message_id']}", headers=author.headers)
        assert deleted.status_code == 204, deleted.text
        await watcher.expect("message_edited", seq=acks[1]["seq"])
        await watcher.expect("message_deleted", seq=acks[2]["seq"])

        await watcher.send({"type": "unsubscribe", "group_id": group})
        await watcher.expect("unsubscribed", group_id=group)
        seen, raw = await replayed(watcher, group, 0)
        async with socket(rt.ws, member.token) as fresh:
            again, raw_again = await replayed(fresh, group, 0)

    for frames in (seen, again):
        assert [(f["type"], f["seq"]) for f in frames] == [
            ("message", acks[0]["seq"]),
            ("message", acks[1]["seq"]),
            ("message_deleted", acks[2]["seq"]),
        ]
        assert [f.get("body") for f in frames[:2]] == [TEXTS[0], "the final"]
        assert frames[2]["message_id"] == acks[2]["message_id"]
    assert not any(text in raw + raw_again for text in TEXTS[1:])


async def test_a_message_just_sent_can_be_edited_and_deleted_at_once(rt: Realtime) -> None:
    """An edit or delete right after the socket's ack waits for history; unknown ids: 404.

    The ack comes before a persister stores the message (it is durable in the log).
    """
    author = await account(rt.http)
    group = await public_group(rt.http, author)
    url = f"{GROUPS}/{group}/messages"
    async with socket(rt.ws, author.token) as ws:
        first = await ws.send_message(group, "tpyo", "now-1")
        edited = await rt.http.patch(
            f"{url}/{first['message_id']}", headers=author.headers, json={"body": "typo"}
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["data"]["body"] == "typo"
        second = await ws.send_message(group, "oops", "now-2")
        deleted = await rt.http.delete(f"{url}/{second['message_id']}", headers=author.headers)
        assert deleted.status_code == 204, deleted.text
    unknown = await rt.http.delete(f"{url}/{uuid.uuid4()}", headers=author.headers)
    assert unknown.status_code == 404, unknown.text


async def test_an_edit_finds_a_message_stored_while_it_looks(
    client: httpx.AsyncClient, node: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A persister batch committed between the lookup's reads is found, not answered 404.

    The row is hidden until the service's second read of it, as if a persister committed it
    right then: the high-water mark read after that sees it, so only a lookup that reads
    the mark first and the row second can tell "stored" from "not on its way".
    """
    author = await account(client)
    group = await public_group(client, author)
    message = await post_message(client, author, group, "tpyo")
    reads: list[str] = []
    get_message, max_seq = repo.get_message, repo.max_seq

    def committed() -> bool:
        return len(reads) > 2

    async def hidden_row(session: Any, group_id: uuid.UUID, message_id: uuid.UUID) -> Any:
        if str(group_id) != group:  # another test's node work
            return await get_message(session, group_id, message_id)
        reads.append("row")
        return await get_message(session, group_id, message_id) if committed() else None

    async def hidden_mark(session: Any, group_id: uuid.UUID) -> int:
        if str(group_id) == group:
            reads.append("mark")
        hidden = str(group_id) == group and not committed()
        return await max_seq(session, group_id) - hidden

    monkeypatch.setattr(repo, "get_message", hidden_row)
    monkeypatch.setattr(repo, "max_seq", hidden_mark)
    edited = await client.patch(
        f"{GROUPS}/{group}/messages/{message['id']}", headers=author.headers, json={"body": "typo"}
    )
    assert edited.status_code == 200, (edited.text, reads)
    assert edited.json()["data"]["body"] == "typo"
    assert reads[:3] == ["row", "mark", "row"], reads
