"""The database's part of an erasure, on PostgreSQL and SQLite: snapshots, late rows, replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from server.bus.memory import MemoryBus
from server.realtime.log import tombstone
from server.realtime.memory_log import MemoryMessageLog
from server.services.clock import Clock
from server.services.recovery import RecoveryReader
from server.store import accounts
from server.store.db import Database
from server.store.messages import insert_ignoring_duplicates
from server.store.models import (
    Message,
    Notification,
    NotificationEvent,
    Webhook,
    WebhookDelivery,
)
from tests.factories.rows import new_group, new_user
from tests.fixtures.floors import DictFloors


def message_row(group_id: uuid.UUID, author_id: uuid.UUID, seq: int) -> dict[str, object]:
    """A ``messages`` row as the persister writes it."""
    return {
        "id": uuid.uuid4(),
        "group_id": group_id,
        "seq": seq,
        "author_id": author_id,
        "body": f"secret {seq}",
        "client_msg_id": f"c{seq}",
        "created_at": datetime.now(UTC),
        "deleted_at": None,
    }


async def test_rows_of_an_erased_author_are_stored_as_tombstones(dialect_db: Database) -> None:
    """A message persisted after its author was erased keeps its seq, not its author or text."""
    group, author = await new_group(dialect_db), await new_user(dialect_db)
    rows = [message_row(group, author, 1), message_row(group, uuid.uuid4(), 2)]
    async with dialect_db.session() as session, session.begin():
        written = await insert_ignoring_duplicates(session, rows)
    assert [(r["author_id"], r["body"]) for r in written] == [(author, "secret 1"), (None, "")]
    assert written[1]["deleted_at"] is not None
    async with dialect_db.session() as session:
        stored = list(
            await session.scalars(
                select(Message).where(Message.group_id == group).order_by(Message.seq)
            )
        )
    assert [(m.seq, m.author_id, m.body, m.deleted_at is None) for m in stored] == [
        (1, author, "secret 1", True),
        (2, None, "", False),
    ]


async def test_snapshots_lose_the_users_text_and_names(dialect_db: Database) -> None:
    """Mention notifications, outbox events and webhook payloads keep no text or name of theirs."""
    group, user, reader = (
        await new_group(dialect_db),
        await new_user(dialect_db),
        await new_user(dialect_db),
    )
    theirs = {"id": str(uuid.uuid4()), "author_id": str(user), "body": "secret"}
    others = {"id": str(uuid.uuid4()), "author_id": str(reader), "body": "kept"}
    joined = {"user_id": str(user), "username": "them", "display_name": "Them", "role": "member"}
    async with dialect_db.session() as session, session.begin():
        hook = Webhook(group_id=group, url="https://example.com/h", events=["*"], secret="x")
        session.add(hook)
        await session.flush()
        session.add_all(
            [
                Notification(
                    user_id=reader, kind="mention", group_id=group, event_key="a", data=theirs
                ),
                Notification(
                    user_id=reader, kind="mention", group_id=group, event_key="b", data=others
                ),
                NotificationEvent(kind="mention", group_id=group, key="a", payload=theirs),
                WebhookDelivery(webhook_id=hook.id, event="message.created", payload=theirs),
                WebhookDelivery(webhook_id=hook.id, event="member.joined", payload=joined),
            ]
        )
    async with dialect_db.session() as session, session.begin():
        assert await accounts.erase_snapshots(session, user) == 4
    async with dialect_db.session() as session:
        notes = {
            n.event_key: n.data
            for n in await session.scalars(
                select(Notification).where(Notification.group_id == group)
            )
        }
        event = await session.scalar(
            select(NotificationEvent.payload).where(NotificationEvent.group_id == group)
        )
        deliveries = {
            d.event: d.payload
            for d in await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
            )
        }
    blank = {**theirs, "author_id": None, "body": ""}
    assert notes == {"a": blank, "b": others} and event == blank
    assert deliveries == {
        "message.created": blank,
        "member.joined": {**joined, "username": "", "display_name": ""},
    }


async def test_replays_from_the_database_show_deleted_messages_as_tombstones(
    dialect_db: Database,
) -> None:
    """A replay the log's window cannot serve reads the rows: a deleted one is its tombstone."""
    group, author = await new_group(dialect_db), await new_user(dialect_db)
    rows = [message_row(group, author, seq) for seq in (1, 2, 3)]
    async with dialect_db.session() as session, session.begin():
        await insert_ignoring_duplicates(session, rows)
        await accounts.erase_messages(session, author, datetime.now(UTC))
        await session.execute(
            update(Message)
            .where(Message.group_id == group, Message.seq != 2)
            .values(body="kept", author_id=author, deleted_at=None)
        )
    empty_log = MemoryMessageLog(MemoryBus(), DictFloors(), window=100, window_s=3600)
    reader = RecoveryReader(empty_log, dialect_db, Clock(), window=100, window_s=3600)

    replay = await reader.replay(group, 0, 3)

    assert replay.recovered and [r.seq for r in replay.frames] == [1, 2, 3]
    assert replay.frames[1].frame == tombstone(group, rows[1]["id"], 2)  # type: ignore[arg-type]
    assert b'"body":"kept"' in replay.frames[0].frame
