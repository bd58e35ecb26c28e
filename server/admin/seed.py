"""Seed load-test people and study groups with Faker data, idempotently.

``python -m server.admin seed --users 1000 --groups 100`` creates seeded persons
``0..users-1`` (``user<i>@loadtest.invalid``, one documented password) and groups
``0..groups-1`` with their memberships, as ``server/admin/seed_plan.py`` lays them out;
``--messages N`` adds Faker chat over the groups (seqs ``1..n`` per group, written by its
members, spread over the last 180 days; ``COPY`` on PostgreSQL, batched inserts on SQLite).
Running it again adds only what is missing; running it with more users extends the set.
It refuses to run when ``ENV=production``.

The password is hashed once, with the product's hasher and ``BCRYPT_ROUNDS``, and the
hash is shared by every seeded person: seeding thousands takes seconds, while each login
still costs what a real one does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.admin import seed_plan
from server.admin.seed_plan import SeedPlan
from server.security.passwords import PasswordHasher
from server.security.sanitize import clean_email, clean_text, clean_username
from server.settings import Settings, SettingsError
from server.store.bulk import insert_skipping_conflicts
from server.store.db import create_database
from server.store.models import Membership, Message, Role, StudyGroup, User, Visibility

if TYPE_CHECKING:
    from faker import Faker

NAME = "seed"
HELP = "create load-test users, study groups and messages (idempotent; refused in production)"
BATCH = 1000
COPY_BATCH = 20_000
TEXTS = 5000
"""Distinct Faker sentences the messages are drawn from (Faker is slow per call)."""
SPREAD = timedelta(days=180)
MESSAGE_COLUMNS = [
    "id",
    "group_id",
    "seq",
    "author_id",
    "body",
    "client_msg_id",
    "created_at",
    "edited_at",
    "deleted_at",
]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Counts:
    """Seeded rows present in the database."""

    users: int
    groups: int
    memberships: int
    messages: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.users - other.users,
            self.groups - other.groups,
            self.memberships - other.memberships,
            self.messages - other.messages,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--users", type=int, required=True, help="seeded persons 0..N-1")
    parser.add_argument("--groups", type=int, required=True, help="seeded groups 0..M-1")
    parser.add_argument(
        "--groups-per-user", type=int, default=2, help="groups each person is in (default 2)"
    )
    parser.add_argument(
        "--messages", type=int, default=0, help="messages over all groups (default 0)"
    )
    parser.add_argument(
        "--faker-seed", type=int, default=2026, help="seed of the generated names and texts"
    )


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Seed the database of the environment's settings; 2 when refused or misconfigured."""
    source = os.environ if environ is None else environ
    if source.get("ENV", "").strip().lower() == "production":
        print("seed: refusing to run with ENV=production", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(source)
        plan = SeedPlan(args.users, args.groups, args.groups_per_user, args.messages)
    except (SettingsError, ValueError) as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    added = asyncio.run(seed(settings, plan, faker_seed=args.faker_seed))
    print(
        f"seeded {plan.users} users, {plan.groups} groups ({plan.groups_per_user} per user): "
        f"added {added.users} users, {added.groups} groups, {added.memberships} memberships, "
        f"{added.messages} messages in {time.monotonic() - started:.1f} s; "
        f"password: {seed_plan.PASSWORD}"
    )
    return 0


async def seed(settings: Settings, plan: SeedPlan, *, faker_seed: int = 2026) -> Counts:
    """Insert what ``plan`` lacks in one transaction; return how many rows were added."""
    password_hash = await PasswordHasher(rounds=settings.bcrypt_rounds).hash(seed_plan.PASSWORD)
    fake = _faker(faker_seed)
    db = create_database(settings.database_url, pool_min=1, pool_max=2)
    try:
        async with db.session() as session, session.begin():
            before = await count_seeded(session, plan)
            for chunk in _chunks(range(plan.users)):
                rows = [_user_row(index, fake, password_hash) for index in chunk]
                await insert_skipping_conflicts(session, User, rows, ["id"])
            groups = [_group_row(index, fake) for index in range(plan.groups)]
            await insert_skipping_conflicts(session, StudyGroup, groups, ["id"])
            for chunk in _chunks(range(plan.users)):
                rows = [row for index in chunk for row in _membership_rows(plan, index)]
                await insert_skipping_conflicts(session, Membership, rows, ["group_id", "user_id"])
            for ids in _chunks([seed_plan.group_id(index) for index in range(plan.groups)]):
                await _recount_members(session, ids)
            await seed_messages(session, plan, fake)
            return await count_seeded(session, plan) - before
    finally:
        await db.dispose()


async def count_seeded(session: AsyncSession, plan: SeedPlan) -> Counts:
    """How many seeded users, plan groups and seeded people's memberships exist."""
    seeded = select(User.id).where(User.email.like(f"%@{seed_plan.DOMAIN}"))
    ids = [seed_plan.group_id(index) for index in range(plan.groups)]
    users = await session.scalar(select(func.count()).select_from(seeded.subquery()))
    groups = messages = 0
    for chunk in _chunks(ids):
        counted = select(func.count()).where(StudyGroup.id.in_(chunk))
        groups += await session.scalar(counted) or 0
        in_groups = select(func.count()).where(Message.group_id.in_(chunk))
        messages += await session.scalar(in_groups) or 0
    memberships = await session.scalar(
        select(func.count()).select_from(Membership).where(Membership.user_id.in_(seeded))
    )
    return Counts(users or 0, groups, memberships or 0, messages)


async def seed_messages(session: AsyncSession, plan: SeedPlan, fake: Faker) -> None:
    """Add each group's missing messages after its highest seq, ``COPY_BATCH`` rows a write."""
    if not plan.messages:
        return
    texts = [
        clean_text(fake.sentence(nb_words=words), field="body", max_length=4000)
        for words in (fake.random_int(2, 24) for _ in range(TEXTS))
    ]
    last = await _last_seqs(session, plan)
    rows = _message_rows(plan, last, texts, random.Random(len(texts)))  # noqa: S311  # nosec B311
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"
    driver = (await connection.get_raw_connection()).driver_connection if postgres else None
    for batch in _batches(rows, COPY_BATCH):
        if driver is None:
            await insert_skipping_conflicts(session, Message, batch, ["id"])
        else:
            records = [tuple(row[column] for column in MESSAGE_COLUMNS) for row in batch]
            await driver.copy_records_to_table("messages", records=records, columns=MESSAGE_COLUMNS)
    await session.execute(
        update(StudyGroup)
        .where(StudyGroup.id.in_([seed_plan.group_id(group) for group in last]))
        .values(seq_ceiling=_highest_seq())
        .execution_options(synchronize_session=False)
    )


def _highest_seq() -> ColumnElement[int]:
    """The group's seq ceiling raised to its highest stored seq (portable ``greatest``)."""
    highest = (
        select(func.coalesce(func.max(Message.seq), 0))
        .where(Message.group_id == StudyGroup.id)
        .correlate(StudyGroup)
        .scalar_subquery()
    )
    return case((StudyGroup.seq_ceiling > highest, StudyGroup.seq_ceiling), else_=highest)


async def _last_seqs(session: AsyncSession, plan: SeedPlan) -> dict[int, int]:
    """Each plan group's highest stored seq (0 when empty)."""
    index = {seed_plan.group_id(group): group for group in range(plan.groups)}
    last = dict.fromkeys(range(plan.groups), 0)
    for chunk in _chunks(list(index)):
        rows = await session.execute(
            select(Message.group_id, func.max(Message.seq))
            .where(Message.group_id.in_(chunk))
            .group_by(Message.group_id)
        )
        for group_id, seq in rows:
            last[index[group_id]] = int(seq)
    return last


def _message_rows(
    plan: SeedPlan, last: Mapping[int, int], texts: Sequence[str], rng: random.Random
) -> Iterator[dict[str, Any]]:
    members = plan.members()
    now = datetime.now(UTC)
    for group, seen in last.items():
        count = plan.messages_in(group)
        group_id, authors = seed_plan.group_id(group), members[group]
        for seq in range(seen + 1, count + 1):
            yield {
                "id": uuid.uuid4(),
                "group_id": group_id,
                "seq": seq,
                "author_id": seed_plan.user_id(authors[seq % len(authors)]),
                "body": texts[rng.randrange(len(texts))],
                "client_msg_id": f"seed-{seq}",
                "created_at": now - SPREAD * (1 - seq / count),
                "edited_at": None,
                "deleted_at": None,
            }


def _batches(rows: Iterator[_T], size: int) -> Iterator[list[_T]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


async def _recount_members(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    """Set ``member_count`` from the memberships, as the membership services keep it."""
    counted = (
        select(func.count())
        .where(Membership.group_id == StudyGroup.id)
        .correlate(StudyGroup)
        .scalar_subquery()
    )
    await session.execute(
        update(StudyGroup)
        .where(StudyGroup.id.in_(ids))
        .values(member_count=counted)
        .execution_options(synchronize_session=False)
    )


def _faker(faker_seed: int) -> Faker:
    try:
        from faker import Faker  # noqa: PLC0415 - a dev/load extra, not needed to serve
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise SystemExit("seed: needs Faker (pip install -e '.[load]' or '.[dev]')") from None
    fake = Faker()
    fake.seed_instance(faker_seed)
    return fake


def _user_row(index: int, fake: Faker, password_hash: str) -> dict[str, Any]:
    name = clean_text(fake.name(), field="display_name", min_length=1, max_length=100)
    bio = clean_text(fake.sentence(nb_words=8), field="bio", max_length=1000)
    return {
        "id": seed_plan.user_id(index),
        "email": clean_email(seed_plan.email(index)),
        "username": clean_username(seed_plan.username(index)),
        "display_name": name,
        "bio": bio,
        "password_hash": password_hash,
    }


def _group_row(index: int, fake: Faker) -> dict[str, Any]:
    subject = seed_plan.subject(index)
    title = f"{subject}: {fake.catch_phrase()}"[:90] + f" #{index}"
    private = SeedPlan.is_private(index)
    return {
        "id": seed_plan.group_id(index),
        "name": clean_text(title, field="name", min_length=3, max_length=100),
        "description": clean_text(
            fake.paragraph(nb_sentences=2), field="description", max_length=2000
        ),
        "subject": clean_text(subject, field="subject", max_length=100),
        "visibility": (Visibility.PRIVATE if private else Visibility.PUBLIC).value,
        "member_count": 0,
        "owner_id": seed_plan.user_id(SeedPlan.owner_of(index)),
    }


def _membership_rows(plan: SeedPlan, index: int) -> Iterator[dict[str, Any]]:
    for group in plan.groups_of(index):
        owner = SeedPlan.owner_of(group) == index
        yield {
            "group_id": seed_plan.group_id(group),
            "user_id": seed_plan.user_id(index),
            "role": (Role.OWNER if owner else Role.MEMBER).value,
        }


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]
