"""Due-soon reminders with a one-hour lead and a one-second tick, on real processes.

A scheduler process (the Procfile's line) queues the scan every tick, a worker process runs
it. Each member is reminded once per assignment and due time: a moved ``due_at`` re-arms
it, a deleted assignment is never reminded, two schedulers act as one (the lease), and a
worker killed in the middle of a run leaves every member reminded exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, or_, select, update

from server.security.passwords import PasswordHasher
from server.store.models import Assignment, Membership, Notification, StudyGroup, User
from tests.factories.groups import add_member, assignment_payload, create_group
from tests.factories.users import Account, account
from tests.fixtures.notify_stack import Stack, eventually, notify_stack
from tests.fixtures.services import REDIS_URL

pytestmark = pytest.mark.slow
DUE_SOON = "assignment.due_soon"
LEAD_S = 3600


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Node, worker and one scheduler, ticking every second."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    folder = tmp_path_factory.mktemp("reminders")
    async with notify_stack(
        pg_url, prefix, folder, reminder_lead_s=LEAD_S, scheduler_tick_s=1
    ) as made:
        made.start_scheduler()
        yield made


def _due(minutes: float) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


async def _group(stack: Stack, members: int) -> tuple[Account, list[Account], str]:
    owner = await account(stack.http)
    group = await create_group(stack.http, owner)
    joined = [await account(stack.http) for _ in range(members)]
    for member in joined:
        await add_member(stack.http, owner, group["id"], member)
    return owner, joined, group["id"]


async def _assignment(stack: Stack, owner: Account, group_id: str, minutes: float) -> str:
    return await _assignment_due(stack, owner, group_id, _due(minutes))


async def _assignment_due(stack: Stack, owner: Account, group_id: str, due_at: str) -> str:
    answer = await stack.http.post(
        f"/api/v1/study-groups/{group_id}/assignments",
        headers=owner.headers,
        json=assignment_payload(due_at=due_at),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


async def _reminders(stack: Stack, *assignment_ids: str) -> list[Notification]:
    """Due-soon notifications of these assignments."""
    keys = [Notification.event_key.like(f"{DUE_SOON}/{item}/%") for item in assignment_ids]
    async with stack.node.db.session() as session:
        rows = await session.scalars(
            select(Notification).where(Notification.kind == DUE_SOON, or_(*keys))
        )
        return list(rows)


async def _ticks(count: int = 3) -> None:
    """Let the scheduler tick and the worker scan a few times."""
    await asyncio.sleep(count * 1.2)


async def test_inside_the_lead_every_member_is_reminded_once(stack: Stack) -> None:
    """Owner and members each get one reminder with the assignment, pushed and listed."""
    owner, members, group_id = await _group(stack, 2)
    assignment_id = await _assignment(stack, owner, group_id, 30)
    everyone = {owner.id, *(member.id for member in members)}
    found = await eventually(lambda: _complete(stack, len(everyone), assignment_id), timeout=20)
    assert {str(note.user_id) for note in found} == everyone
    assert all(note.data["id"] == assignment_id for note in found)
    await _ticks()
    assert len(await _reminders(stack, assignment_id)) == len(everyone)
    listed = await stack.http.get(
        "/api/v1/notifications", headers=members[0].headers, params={"filter[kind]": DUE_SOON}
    )
    assert [item["data"]["id"] for item in listed.json()["data"]] == [assignment_id]


async def _complete(stack: Stack, count: int, *ids: str) -> list[Notification] | None:
    found = await _reminders(stack, *ids)
    return found if len(found) >= count else None


async def test_a_due_time_moved_out_and_back_in_reminds_once_more(stack: Stack) -> None:
    """Reminded; moved two days out: nothing; moved back within the lead: one more each."""
    owner, members, group_id = await _group(stack, 1)
    assignment_id = await _assignment(stack, owner, group_id, 20)
    await eventually(lambda: _complete(stack, 2, assignment_id))
    path = f"/api/v1/study-groups/{group_id}/assignments/{assignment_id}"
    moved = await stack.http.patch(path, headers=owner.headers, json={"due_at": _due(2880)})
    assert moved.status_code == 200, moved.text
    await _ticks()
    assert len(await _reminders(stack, assignment_id)) == 2
    back = await stack.http.patch(path, headers=owner.headers, json={"due_at": _due(40)})
    assert back.status_code == 200, back.text
    found = await eventually(lambda: _complete(stack, 4, assignment_id))
    await _ticks()
    assert len(await _reminders(stack, assignment_id)) == len(found) == 4
    assert sorted(str(n.user_id) for n in found) == sorted([owner.id, members[0].id] * 2)


async def test_a_due_time_moved_back_to_one_reminded_before_reminds_again(stack: Stack) -> None:
    """Reminded at 30 min; moved to 40 min: reminded; moved back to 30 min: reminded again.

    The contract: a changed due_at re-arms it. The claim was per due time, so moving back to
    a due time reminded about before reminded nobody.
    """
    owner, members, group_id = await _group(stack, 1)
    first = _due(30)
    assignment_id = await _assignment_due(stack, owner, group_id, first)
    await eventually(lambda: _complete(stack, 2, assignment_id))
    path = f"/api/v1/study-groups/{group_id}/assignments/{assignment_id}"
    for step, due in enumerate((_due(40), first), start=2):
        moved = await stack.http.patch(path, headers=owner.headers, json={"due_at": due})
        assert moved.status_code == 200, moved.text
        found = await eventually(lambda n=step: _complete(stack, 2 * n, assignment_id))
        assert sorted(str(n.user_id) for n in found) == sorted([owner.id, members[0].id] * step)
    await _ticks()
    assert len(await _reminders(stack, assignment_id)) == 6


async def test_who_joins_while_an_assignment_is_due_soon_is_reminded_once(stack: Stack) -> None:
    """Reminded before they joined, the assignment still due in 30 min: one reminder for them."""
    owner, _members, group_id = await _group(stack, 1)
    assignment_id = await _assignment(stack, owner, group_id, 30)
    await eventually(lambda: _complete(stack, 2, assignment_id))
    late = await account(stack.http)
    await add_member(stack.http, owner, group_id, late)
    found = await eventually(lambda: _complete(stack, 3, assignment_id))
    assert late.id in {str(note.user_id) for note in found}
    await _ticks()
    assert len(await _reminders(stack, assignment_id)) == 3


async def test_a_deleted_assignment_reminds_nobody(stack: Stack) -> None:
    """Deleted outside the lead, its due time then inside it: nothing; a live twin: reminded."""
    owner, _members, group_id = await _group(stack, 1)
    deleted = await _assignment(stack, owner, group_id, 180)
    live = await _assignment(stack, owner, group_id, 180)
    path = f"/api/v1/study-groups/{group_id}/assignments/{deleted}"
    assert (await stack.http.delete(path, headers=owner.headers)).status_code == 204
    soon = datetime.now(UTC) + timedelta(minutes=30)
    async with stack.node.db.session() as session, session.begin():
        await session.execute(
            update(Assignment)
            .where(Assignment.id.in_([uuid.UUID(deleted), uuid.UUID(live)]))
            .values(due_at=soon)
        )
    await eventually(lambda: _complete(stack, 2, live))
    await _ticks()
    assert await _reminders(stack, deleted) == []


async def test_two_schedulers_still_remind_once(stack: Stack) -> None:
    """A second scheduler stands by (one lease holder); each member gets one reminder."""
    stack.start_scheduler("scheduler-2")
    try:
        await _ticks(2)
        owner, _members, group_id = await _group(stack, 2)
        assignment_id = await _assignment(stack, owner, group_id, 25)
        await eventually(lambda: _complete(stack, 3, assignment_id))
        await _ticks()
        assert len(await _reminders(stack, assignment_id)) == 3
        redis = Redis.from_url(REDIS_URL)
        try:
            holder = await redis.get(f"{stack.prefix}scheduler:lease")
        finally:
            await redis.aclose()
        assert holder is not None
    finally:
        await stack.stop("scheduler-2")


async def test_a_stopped_scheduler_hands_the_lease_over(stack: Stack) -> None:
    """SIGTERM (a deploy) stops the scheduler gracefully: exit 0, the lease given up at once.

    It was killed outright, so a standby waited for the lease to expire (two ticks + 5 s).
    """
    key = f"{stack.prefix}scheduler:lease"
    redis = Redis.from_url(REDIS_URL)
    try:
        await eventually(lambda: _exists(redis, key))
        process = stack.processes["scheduler"]
        await stack.stop("scheduler")
        assert process.returncode == 0, stack.log("scheduler")[-2000:]
        assert not await redis.exists(key)  # the lease would have lived 7 s more
    finally:
        await redis.aclose()
        stack.start_scheduler()


async def _exists(redis: Redis, key: str) -> bool:
    return bool(await redis.exists(key))


async def _crowd(stack: Stack, group_id: str, size: int) -> None:
    """Add ``size`` members straight into the database (registering them would be slow)."""
    hashed = await PasswordHasher(4, 2).hash("crowd-member-password-1")
    rows: list[dict[str, Any]] = []
    for _ in range(size):
        suffix = uuid.uuid4().hex[:10]
        rows.append({"id": uuid.uuid4(), "suffix": suffix})
    async with stack.node.db.session() as session, session.begin():
        for row in rows:
            session.add(
                User(
                    id=row["id"],
                    email=f"crowd.{row['suffix']}@example.com",
                    username=f"crowd_{row['suffix']}",
                    display_name="Crowd",
                    bio="",
                    password_hash=hashed,
                )
            )
        await session.flush()
        for row in rows:
            session.add(Membership(group_id=uuid.UUID(group_id), user_id=row["id"], role="member"))
        await session.execute(
            update(StudyGroup)
            .where(StudyGroup.id == uuid.UUID(group_id))
            .values(member_count=StudyGroup.member_count + size)
        )


async def test_a_worker_killed_mid_run_leaves_everyone_reminded_exactly_once(
    stack: Stack,
) -> None:
    """SIGKILL while a scan is half done; a new worker finishes: one reminder each."""
    await stack.stop("worker")
    owner, _members, group_id = await _group(stack, 0)
    await _crowd(stack, group_id, 60)
    ids = [await _assignment(stack, owner, group_id, 30 + i) for i in range(25)]
    total = 61 * len(ids)
    await stack.start_worker("worker-doomed")
    partial = await eventually(lambda: _partial(stack, ids, total), timeout=30, every=0.01)
    await stack.stop("worker-doomed", signal.SIGKILL)
    await stack.start_worker("worker")
    found = await eventually(lambda: _complete(stack, total, *ids), timeout=60)
    await _ticks()
    found = await _reminders(stack, *ids)
    pairs = {(note.user_id, note.event_key) for note in found}
    assert len(found) == len(pairs) == total, (partial, len(found))
    async with stack.node.db.session() as session:
        members = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.group_id == uuid.UUID(group_id))
        )
    assert members == 61


async def _partial(stack: Stack, ids: list[str], total: int) -> int | None:
    count = len(await _reminders(stack, *ids))
    return count if 0 < count < total else None
