"""``python -m server.admin seed`` on PostgreSQL and SQLite: idempotent, and people log in."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from server.admin import seed_plan
from server.admin.seed import Counts, count_seeded, seed
from server.admin.seed_plan import SeedPlan
from server.settings import Settings
from server.store.db import create_database
from server.store.models import Message, StudyGroup
from tests.fixtures.server import serve
from tests.fixtures.services import REDIS_URL, fresh_database, migrate
from tests.fixtures.settings import make_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def seed_db() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test alone."""
    async with fresh_database("sbseed") as url:
        yield url


def _run_seed(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "BCRYPT_ROUNDS": "4", "ENV": "dev"}
    return subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "server.admin", "seed", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_seed_twice_adds_nothing_the_second_time(seed_db: str) -> None:
    """An operator seeds 30 people in 5 groups, then runs the same command again."""
    first = await asyncio.to_thread(_run_seed, seed_db, "--users", "30", "--groups", "5")
    assert first.returncode == 0, first.stderr
    assert "added 30 users, 5 groups, 60 memberships" in first.stdout
    again = await asyncio.to_thread(_run_seed, seed_db, "--users", "30", "--groups", "5")
    assert again.returncode == 0, again.stderr
    assert "added 0 users, 0 groups, 0 memberships" in again.stdout
    more = await asyncio.to_thread(_run_seed, seed_db, "--users", "40", "--groups", "5")
    assert "added 10 users, 0 groups, 20 memberships" in more.stdout


async def test_seeded_people_log_in_and_see_their_groups(
    seed_db: str, own_prefix: str, tmp_path: Path
) -> None:
    """Person 3 logs in with the documented password and finds the plan's groups, counted."""
    plan = SeedPlan(20, 4)
    settings = make_settings(seed_db, REDIS_URL, own_prefix, tmp_path / "media")
    assert await seed(settings, plan) == await _counts(settings, plan)
    async with serve(settings) as node, httpx.AsyncClient(base_url=node.base_url) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": seed_plan.email(3), "password": seed_plan.PASSWORD},
        )
        assert login.status_code == 200, login.text
        token = login.json()["data"]["access_token"]
        mine = await http.get(
            "/api/v1/study-groups",
            params={"filter[member]": "me", "page_size": 100},
            headers={"Authorization": f"Bearer {token}"},
        )
    groups = {row["id"]: row for row in mine.json()["data"]}
    assert set(groups) == {str(seed_plan.group_id(g)) for g in plan.groups_of(3)}
    assert {row["member_count"] for row in groups.values()} == {10}
    assert groups[str(seed_plan.group_id(3))]["role"] == "owner"


async def test_seeded_messages_are_gapless_by_members_and_added_once(
    seed_db: str, own_prefix: str, tmp_path: Path
) -> None:
    """200 messages over 4 groups (a tenth in the busy one), by members; again adds none."""
    plan = SeedPlan(20, 4, messages=200)
    settings = make_settings(seed_db, REDIS_URL, own_prefix, tmp_path / "media")
    assert (await seed(settings, plan)).messages == 200
    assert (await seed(settings, plan)).messages == 0
    assert (await seed(settings, SeedPlan(20, 4, messages=260))).messages == 60
    members = SeedPlan(20, 4).members()
    db = create_database(seed_db, pool_min=1, pool_max=1)
    try:
        async with db.session() as session:
            for group in range(4):
                gid = seed_plan.group_id(group)
                rows = (
                    await session.execute(
                        select(Message.seq, Message.author_id).where(Message.group_id == gid)
                    )
                ).all()
                ceiling = (await session.get(StudyGroup, gid)).seq_ceiling  # type: ignore[union-attr]
                wanted = SeedPlan(20, 4, messages=260).messages_in(group)
                assert sorted(seq for seq, _ in rows) == list(range(1, wanted + 1))
                assert ceiling == wanted
                authors = {seed_plan.user_id(person) for person in members[group]}
                assert {author for _, author in rows} <= authors
    finally:
        await db.dispose()
    assert [SeedPlan(20, 4, messages=260).messages_in(g) for g in range(4)] == [26, 78, 78, 78]


def test_a_plan_refuses_negative_messages_and_puts_one_group_s_all_in_it() -> None:
    """Negative counts are refused; a single group holds every message."""
    with pytest.raises(ValueError, match="messages"):
        SeedPlan(2, 1, messages=-1)
    assert SeedPlan(2, 1, messages=7).messages_in(0) == 7


async def test_seed_works_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    """The embedded default (SQLite) seeds too, with escaped Faker text and counted members."""
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    await asyncio.to_thread(migrate, url)
    settings = make_settings(url, None, "sb:", tmp_path / "media")
    plan = SeedPlan(12, 3, groups_per_user=1, messages=30)
    added = await seed(settings, plan)
    assert (added.users, added.groups, added.memberships, added.messages) == (12, 3, 12, 30)
    assert (await seed(settings, plan)).users == 0
    db = create_database(url, pool_min=1, pool_max=1)
    try:
        async with db.session() as session:
            group = await session.get(StudyGroup, seed_plan.group_id(0))
    finally:
        await db.dispose()
    assert group is not None
    assert group.member_count == 4
    assert "'" not in group.description


async def _counts(settings: Settings, plan: SeedPlan) -> Counts:
    db = create_database(settings.database_url, pool_min=1, pool_max=1)
    try:
        async with db.session() as session:
            return await count_seeded(session, plan)
    finally:
        await db.dispose()
