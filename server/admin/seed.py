"""Seed load-test people and study groups with Faker data, idempotently.

``python -m server.admin seed --users 1000 --groups 100`` creates seeded persons
``0..users-1`` (``user<i>@loadtest.invalid``, one documented password) and groups
``0..groups-1`` with their memberships, as ``server/admin/seed_plan.py`` lays them out.
Running it again adds only what is missing; running it with more users extends the set.
It refuses to run when ``ENV=production``.

The password is hashed once, with the product's hasher and ``BCRYPT_ROUNDS``, and the
hash is shared by every seeded person: seeding thousands takes seconds, while each login
still costs what a real one does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.admin import seed_plan
from server.admin.seed_plan import SeedPlan
from server.security.passwords import PasswordHasher
from server.security.sanitize import clean_email, clean_text, clean_username
from server.settings import Settings, SettingsError
from server.store.bulk import insert_skipping_conflicts
from server.store.db import create_database
from server.store.models import Membership, Role, StudyGroup, User, Visibility

if TYPE_CHECKING:
    from faker import Faker

NAME = "seed"
HELP = "create load-test users and study groups (idempotent; refused in production)"
BATCH = 1000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Counts:
    """Seeded rows present in the database."""

    users: int
    groups: int
    memberships: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.users - other.users,
            self.groups - other.groups,
            self.memberships - other.memberships,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--users", type=int, required=True, help="seeded persons 0..N-1")
    parser.add_argument("--groups", type=int, required=True, help="seeded groups 0..M-1")
    parser.add_argument(
        "--groups-per-user", type=int, default=2, help="groups each person is in (default 2)"
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
        plan = SeedPlan(args.users, args.groups, args.groups_per_user)
    except (SettingsError, ValueError) as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    added = asyncio.run(seed(settings, plan, faker_seed=args.faker_seed))
    print(
        f"seeded {plan.users} users, {plan.groups} groups ({plan.groups_per_user} per user): "
        f"added {added.users} users, {added.groups} groups, {added.memberships} memberships "
        f"in {time.monotonic() - started:.1f} s; password: {seed_plan.PASSWORD}"
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
            return await count_seeded(session, plan) - before
    finally:
        await db.dispose()


async def count_seeded(session: AsyncSession, plan: SeedPlan) -> Counts:
    """How many seeded users, plan groups and seeded people's memberships exist."""
    seeded = select(User.id).where(User.email.like(f"%@{seed_plan.DOMAIN}"))
    ids = [seed_plan.group_id(index) for index in range(plan.groups)]
    users = await session.scalar(select(func.count()).select_from(seeded.subquery()))
    groups = 0
    for chunk in _chunks(ids):
        counted = select(func.count()).where(StudyGroup.id.in_(chunk))
        groups += await session.scalar(counted) or 0
    memberships = await session.scalar(
        select(func.count()).select_from(Membership).where(Membership.user_id.in_(seeded))
    )
    return Counts(users or 0, groups, memberships or 0)


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
