"""Rollback: every migration downgrades and upgrades again with data in the tables.

On PostgreSQL (a throw-away database) and on SQLite, the same walk
(docs/operations/rollback.md relies on it):

1. from base, each revision in turn: upgrade to it, put a row in every table that exists and a
   value in every column that has none;
   step one revision down (data present) and check that the schema is exactly what it was at
   the revision below and that every surviving column kept its data; step up again and
   check the schema is exactly what it was;
2. at head: no drift from the models, and every model's table holds data;
3. downgrade to base with data in every table, upgrade to head again: the schema matches the
   models and takes data again;
4. from head, step by step down to base with data present, each step landing on the schema
   recorded on the way up and keeping the data of every surviving column.

Rows are made from the models' column types (with realistic values where a column has a
fixed vocabulary), so a new table or column is covered without touching this file; a new
constraint that these values break fails here, loudly, until ``VALUES`` learns it.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Table, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from server.store import models  # noqa: F401 - registers every table on the metadata
from server.store.base import Base
from server.store.db import async_url
from tests.fixtures.services import fresh_database
from tests.integration.test_migrations import _check, _config

BASE = "base"
# Columns with a fixed vocabulary or a format the application relies on.
VALUES: dict[str, dict[str, Any]] = {
    "users": {
        "email": "ada@example.com",
        "username": "ada",
        "display_name": "Ada &lt;L&gt;",
        "password_hash": "$2b$12$" + "a" * 53,
        "mfa_enabled": False,
        "mfa_last_step": 0,
    },
    "refresh_tokens": {"token_hash": "f" * 64},
    "study_groups": {"visibility": "public", "max_members": 10, "member_count": 1},
    "memberships": {"role": "owner", "last_read_seq": 1},
    "invites": {"status": "pending"},
    "messages": {"seq": 1, "body": "hello\n&lt;b&gt;", "client_msg_id": "c-1"},
    "assignments": {"title": "Read chapter 3"},
    "webhooks": {"url": "https://example.com/hooks", "events": ["message.created"]},
    "webhook_deliveries": {
        "event": "message.created",
        "payload": {"id": "d-1", "type": "message.created", "data": {"seq": 1}},
        "status": "pending",
        "attempts": 0,
        "response_status": 200,
    },
    "account_tokens": {"purpose": "reset_password", "token_hash": "e" * 64, "email": "a@b.io"},
    "notification_events": {
        "kind": "mention",
        "key": "mention/m-1",
        "payload": {"id": "m-1", "body": "hi @ada"},
    },
    "notifications": {
        "kind": "mention",
        "event_key": "mention/m-1",
        "data": {"id": "m-1", "body": "hi @ada"},
        "email_status": "pending",
    },
    "notification_settings": {"email": {"mention": False}},
    "dead_letters": {
        "task": "email.notification",
        "args": ["00000000-0000-0000-0000-000000000001"],
        "kwargs": {},
        "attempts": 3,
    },
    "pending_erasures": {"group_ids": ["00000000-0000-0000-0000-000000000002"]},
}
Schema = dict[str, Any]
Rows = dict[str, dict[str, list[str]]]


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    # Neither backend reflects the expression index on lower(subject) without a warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        yield


def revisions() -> list[str]:
    """Revision ids from the first to head (the chain is linear: test_migrations)."""
    script = ScriptDirectory.from_config(_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _schema(conn: Connection) -> Schema:
    with _quiet_reflection():
        inspector = inspect(conn)
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], str(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                "uniques": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
            }
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }


async def schema(engine: AsyncEngine) -> Schema:
    """Tables, columns, keys, indexes and unique constraints as the database reports them."""
    async with engine.connect() as conn:
        return await conn.run_sync(_schema)


async def rows(engine: AsyncEngine) -> Rows:
    """Every row of every table, as text, by table and column."""
    result: Rows = {}
    async with engine.connect() as conn:
        for table in await conn.run_sync(lambda c: inspect(c).get_table_names()):
            if table == "alembic_version":
                continue
            found = await conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 - reflected names
            names = list(found.keys())
            data = [tuple(str(value) for value in row) for row in found]
            result[table] = {name: sorted(row[i] for row in data) for i, name in enumerate(names)}
    return result


def _sample(table: str, column: Column[Any], now: datetime) -> Any:
    if column.name in VALUES.get(table, {}):
        return VALUES[table][column.name]
    kind = _python_type(column.type)
    samples: dict[type, Any] = {
        uuid.UUID: uuid.uuid4(),
        datetime: now + timedelta(days=3),
        bool: True,
        int: 3,
        dict: {"sample": True},
        list: ["sample"],
    }
    if kind is str:
        length = getattr(column.type, "length", None) or 40
        return f"{table}.{column.name}"[:length]
    return samples[kind]


def _python_type(type_: TypeEngine[Any]) -> type:
    if isinstance(type_, TypeDecorator):  # UTCDateTime reports object
        type_ = type_.impl_instance
    try:
        return type_.python_type
    except NotImplementedError:
        return str


async def fill(engine: AsyncEngine) -> None:
    """Give every existing table a row, and every column of it a value where it has none."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        existing = await conn.run_sync(
            lambda c: {
                t: {col["name"] for col in inspect(c).get_columns(t)}
                for t in inspect(c).get_table_names()
            }
        )
        for model in Base.metadata.sorted_tables:  # parents before children
            if model.name not in existing:
                continue
            columns = [c for c in model.columns if c.name in existing[model.name]]
            table = Table(model.name, MetaData(), *(Column(c.name, c.type) for c in columns))
            if not await conn.scalar(select(func.count()).select_from(table)):
                row = {c.name: await _value(conn, model.name, c, now) for c in columns}
                await conn.execute(insert(table).values(row))
                continue
            for column in columns:  # e.g. a column an "add" migration just created
                target = table.c[column.name]
                value = await _value(conn, model.name, column, now)
                await conn.execute(update(table).where(target.is_(None)).values({target: value}))


async def _value(conn: AsyncConnection, table: str, column: Column[Any], now: datetime) -> Any:
    foreign = next(iter(column.foreign_keys), None)
    if foreign is None:
        return _sample(table, column, now)
    referred = foreign.column
    return await conn.scalar(select(referred).limit(1))


def _surviving(before: Rows, after: Rows) -> Rows:
    """``before`` restricted to the tables and columns that still exist ``after``."""
    return {
        table: {name: values for name, values in columns.items() if name in after[table]}
        for table, columns in before.items()
        if table in after
    }


async def _alembic(url: str, action: str, target: str) -> None:
    runner = command.upgrade if action == "upgrade" else command.downgrade
    await asyncio.to_thread(runner, _config(url), target)


async def _step_down(url: str, engine: AsyncEngine, expected: Schema) -> None:
    """Downgrade one revision with data present: the old schema, surviving data kept."""
    before = await rows(engine)
    await _alembic(url, "downgrade", "-1")
    assert await schema(engine) == expected
    after = await rows(engine)
    assert after == _surviving(before, after)


async def walk(url: str) -> dict[str, int]:
    """The whole walk of the module docstring; return the row count per table at the end."""
    # A fresh connection per look: migrations alter tables under it, and asyncpg's cached
    # statement plans (``SELECT *``) would go stale.
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    chain = revisions()
    try:
        await _alembic(url, "downgrade", BASE)
        snapshots: dict[str, Schema] = {BASE: await schema(engine)}
        assert snapshots[BASE] == {}
        below = BASE
        for revision in chain:  # 1.
            await _alembic(url, "upgrade", revision)
            snapshots[revision] = await schema(engine)
            assert snapshots[revision] != snapshots[below], f"{revision} changed nothing"
            await fill(engine)
            await _step_down(url, engine, snapshots[below])
            await _alembic(url, "upgrade", revision)
            assert await schema(engine) == snapshots[revision]
            await fill(engine)
            below = revision
        await asyncio.to_thread(_check, url)  # 2.
        data = await rows(engine)
        counts = {table: len(next(iter(columns.values()))) for table, columns in data.items()}
        assert counts == dict.fromkeys(Base.metadata.tables, 1)
        assert all("None" not in values for columns in data.values() for values in columns.values())
        await _alembic(url, "downgrade", BASE)  # 3.
        assert await schema(engine) == {}
        await _alembic(url, "upgrade", "head")
        await asyncio.to_thread(_check, url)
        assert await schema(engine) == snapshots[chain[-1]]
        await fill(engine)
        assert {t: len(next(iter(c.values()))) for t, c in (await rows(engine)).items()} == counts
        for revision, below in zip(reversed(chain), [*reversed(chain[:-1]), BASE], strict=True):
            assert await schema(engine) == snapshots[revision]  # 4.
            await _step_down(url, engine, snapshots[below])
        return counts
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_postgres_rollback_with_data() -> None:
    """PostgreSQL: every revision down and up with data, base and back, head to base."""
    async with fresh_database("sbrollback") as url:
        counts = await walk(url)
    assert set(counts) == set(Base.metadata.tables)


@pytest.mark.slow
async def test_sqlite_rollback_with_data(tmp_path: Path) -> None:
    """SQLite (the embedded default): the same walk, the same files."""
    counts = await walk(f"sqlite:///{tmp_path / 'rollback.db'}")
    assert set(counts) == set(Base.metadata.tables)


def test_every_revision_has_a_downgrade() -> None:
    """Each migration file defines downgrade() with a body (the walk above runs them)."""
    script = ScriptDirectory.from_config(_config("sqlite://"))
    for revision in script.walk_revisions():
        downgrade = getattr(revision.module, "downgrade", None)
        assert callable(downgrade), revision.revision
        # A body that calls nothing (``pass``, a docstring, ``return``) names nothing.
        assert downgrade.__code__.co_names, f"{revision.revision}: downgrade() does nothing"
