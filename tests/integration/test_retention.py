"""Retention on PostgreSQL and SQLite: what is past its period goes, in batches, once.

For each kind, a row done with longer ago than its period (expired, revoked, used, finished,
read), one done with recently and one still in use; a purge deletes only the first, counts it
in the metric, and a second run finds nothing. A backlog larger than a batch goes in one run.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from server.services.retention import Retention
from server.settings import Settings, SettingsError
from server.store.base import Base
from server.store.db import Database
from server.store.models import (
    AccountToken,
    DeadLetter,
    Notification,
    RefreshToken,
    Webhook,
    WebhookDelivery,
)
from server.store.retention import BATCH, Kind
from tests.factories.rows import new_group, new_user
from tests.fixtures.clock import FrozenClock

DAYS = {
    "sessions": 30,
    "email_tokens": 7,
    "webhook_deliveries": 30,
    "dead_letters": 30,
    "read_notifications": 90,
}


def purged_so_far(kind: str) -> float:
    """The metric's count for ``kind``."""
    return REGISTRY.get_sample_value("studybuddy_retention_purged_total", {"kind": kind}) or 0.0


def three_of_each(
    now: datetime, user: uuid.UUID, hook: uuid.UUID
) -> dict[str, tuple[Base, Base, Base]]:
    """Per kind: (past its period, done with recently, in use)."""
    old, recent, later = now - timedelta(days=100), now - timedelta(days=1), now + timedelta(days=1)

    def session(**fields: Any) -> RefreshToken:
        defaults = {"user_id": user, "family_id": uuid.uuid4(), "expires_at": later}
        return RefreshToken(token_hash=uuid.uuid4().hex, **{**defaults, **fields})

    def token(**fields: Any) -> AccountToken:
        defaults = {"user_id": user, "purpose": "verify_email", "email": "a@example.com"}
        return AccountToken(
            token_hash=uuid.uuid4().hex, **{**defaults, "expires_at": later, **fields}
        )

    def delivery(status: str, updated: datetime) -> WebhookDelivery:
        return WebhookDelivery(
            webhook_id=hook, event="message.created", payload={}, status=status, updated_at=updated
        )

    def note(read_at: datetime | None) -> Notification:
        key = uuid.uuid4().hex
        return Notification(user_id=user, kind="mention", event_key=key, data={}, read_at=read_at)

    def letter(created: datetime) -> DeadLetter:
        return DeadLetter(
            task="t", args=[], kwargs={}, attempts=3, last_error="e", created_at=created
        )

    return {
        "sessions": (session(revoked_at=old), session(expires_at=recent), session()),
        "email_tokens": (token(used_at=old), token(expires_at=recent), token()),
        "webhook_deliveries": (
            delivery("dead", old),
            delivery("succeeded", recent),
            delivery("failed", old),  # still being retried
        ),
        "dead_letters": (letter(old), letter(recent), letter(now)),
        "read_notifications": (note(old), note(recent), note(None)),
    }


async def present(db: Database, rows: list[Base]) -> list[bool]:
    """Whether each row is still stored."""
    async with db.session() as session:
        return [await session.get(type(row), row.id) is not None for row in rows]  # type: ignore[attr-defined]


async def test_each_kind_loses_only_what_is_past_its_period(dialect_db: Database) -> None:
    """Old finished rows go, recent and live ones stay; a second run deletes nothing."""
    clock = FrozenClock()
    user, group = await new_user(dialect_db), await new_group(dialect_db)
    async with dialect_db.session() as session, session.begin():
        hook = Webhook(group_id=group, url="https://example.com/h", events=["*"], secret="x")
        session.add(hook)
        await session.flush()
        rows = three_of_each(clock.now(), user, hook.id)
        session.add_all([row for trio in rows.values() for row in trio])
    before = {kind: purged_so_far(kind) for kind in DAYS}
    retention = Retention(dialect_db, clock, DAYS)

    first = await retention.purge()

    for kind, trio in rows.items():
        assert await present(dialect_db, list(trio)) == [False, True, True], kind
        assert first[kind] >= 1 and purged_so_far(kind) - before[kind] == first[kind]
    assert await retention.purge() == dict.fromkeys(DAYS, 0)


async def test_a_backlog_goes_in_batches_in_one_run(dialect_db: Database) -> None:
    """More rows than a batch: the purge loops until none is left."""
    clock = FrozenClock()
    user = await new_user(dialect_db)
    old = clock.now() - timedelta(days=365)
    async with dialect_db.session() as session, session.begin():
        session.add_all(
            Notification(user_id=user, kind="mention", event_key=str(n), data={}, read_at=old)
            for n in range(BATCH * 2 + 5)
        )
    assert await Retention(dialect_db, clock, DAYS).purge_kind(Kind.READ_NOTIFICATIONS) >= (
        BATCH * 2 + 5
    )
    async with dialect_db.session() as session:
        left = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.user_id == user)
        )
    assert left == 0


def test_every_period_is_a_setting_with_a_default() -> None:
    """``RETENTION_<KIND>_DAYS`` for each kind the purge knows, and negative ones refused."""
    assert Settings().retention_days == DAYS
    assert Settings.from_env({"RETENTION_SESSIONS_DAYS": "0"}).retention_days["sessions"] == 0
    with pytest.raises(SettingsError, match="RETENTION_"):
        Settings.from_env({"RETENTION_DEAD_LETTERS_DAYS": "-1"})
