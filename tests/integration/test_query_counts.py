"""No N+1: list endpoints run a constant number of SQL statements, and their SQL uses indexes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from server.services.assignments import ASSIGNMENT_LIST
from server.services.groups import GROUP_LIST, MEMBER_LIST
from server.services.invites import INVITE_LIST
from server.services.messages import MESSAGE_LIST
from server.services.users import USER_LIST
from server.settings import Settings
from server.store import groups as group_repo
from server.store import messages as message_repo
from server.store.listing import AnySelect, ListSpec, parse_list_query
from server.store.models import Message, StudyGroup, User
from server.store.retention import Kind, batch_of
from tests.factories.groups import GROUPS, create_group, post_message
from tests.factories.users import Account, account
from tests.fixtures.server import RunningServer

BACKGROUND_TASKS = frozenset({"persister", "hub-maintenance", "redis-bus"})
"""Node tasks that may touch the database on their own; their statements are not counted."""


@contextmanager
def counting_statements(node: RunningServer) -> Iterator[list[str]]:
    """Collect every SQL statement the node sends while the block runs (background excluded)."""
    engine: Engine = node.db.engine.sync_engine
    statements: list[str] = []

    def before_cursor_execute(
        _conn: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        task = asyncio.current_task()
        if task is None or task.get_name() not in BACKGROUND_TASKS:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


async def statements_for(
    client: httpx.AsyncClient, node: RunningServer, user: Account, path: str, **params: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """The statements run to serve one GET, and the items it returned."""
    with counting_statements(node) as statements:
        response = await client.get(path, headers=user.headers, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return list(statements), data


def assert_constant(small: list[str], large: list[str]) -> None:
    """The same statements, in the same order, whatever the page size; one of them pages."""
    assert len(small) == len(large), (small, large)
    assert small == large
    assert sum("LIMIT" in statement for statement in small) == 1, small


async def test_group_list_runs_the_same_statements_for_any_page_size(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """Listing 5 or 20 groups of two members each costs the same number of statements."""
    alice, bob = await account(client), await account(client)
    subject = f"n1-{uuid.uuid4().hex[:10]}"
    for n in range(22):
        group = await create_group(
            client, alice, subject=subject, visibility="private" if n % 2 else "public"
        )
        if n % 2:  # private: bob comes in by invite
            sent = await client.post(
                f"{GROUPS}/{group['id']}/invites", headers=alice.headers, json={"user_id": bob.id}
            )
            accepted = await client.post(
                f"/api/v1/invites/{sent.json()['data']['id']}/accept", headers=bob.headers
            )
            assert accepted.status_code == 200
        else:
            joined = await client.post(f"{GROUPS}/{group['id']}/join", headers=bob.headers)
            assert joined.status_code == 200
    fence = {"filter[subject]": subject}
    await statements_for(client, node, bob, GROUPS, **fence, page_size="5")  # warm caches
    small, five = await statements_for(client, node, bob, GROUPS, **fence, page_size="5")
    large, twenty = await statements_for(client, node, bob, GROUPS, **fence, page_size="20")
    assert len(five) == 5 and len(twenty) == 20
    assert all(g["member_count"] == 2 and g["role"] == "member" for g in twenty)
    assert_constant(small, large)
    mine, _ = await statements_for(
        client, node, bob, GROUPS, **fence, page_size="20", **{"filter[member]": "me"}
    )
    assert len(mine) == len(small)


async def test_member_list_runs_the_same_statements_for_any_page_size(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """Listing 5 or 20 members of a 22-member group costs the same number of statements."""
    owner = await account(client)
    group = await create_group(client, owner, visibility="public")
    for _ in range(21):
        user = await account(client)
        joined = await client.post(f"{GROUPS}/{group['id']}/join", headers=user.headers)
        assert joined.status_code == 200
    path = f"{GROUPS}/{group['id']}/members"
    await statements_for(client, node, owner, path, page_size="5")
    small, five = await statements_for(client, node, owner, path, page_size="5")
    large, twenty = await statements_for(client, node, owner, path, page_size="20")
    assert len(five) == 5 and len(twenty) == 20
    assert all(m["username"] for m in twenty)
    assert_constant(small, large)


async def test_message_history_runs_the_same_statements_for_any_page_size(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """Reading 5 or 20 of 24 messages costs the same number of statements."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="public")
    assert (await client.post(f"{GROUPS}/{group['id']}/join", headers=bob.headers)).is_success
    for n in range(24):
        await post_message(client, alice if n % 2 else bob, group["id"])
    path = f"{GROUPS}/{group['id']}/messages"
    await statements_for(client, node, bob, path, page_size="5")
    small, five = await statements_for(client, node, bob, path, page_size="5")
    large, twenty = await statements_for(client, node, bob, path, page_size="20")
    assert [m["seq"] for m in five] == [24, 23, 22, 21, 20]
    assert len(twenty) == 20
    assert_constant(small, large)


# --- EXPLAIN ------------------------------------------------------------------------------

VIEWER = uuid.UUID("00000000-0000-0000-0000-00000000beef")
GROUP = uuid.UUID("00000000-0000-0000-0000-00000000cafe")
SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


def _windowed(statement: AnySelect, spec: ListSpec, **params: str) -> AnySelect:
    """``statement`` with the WHERE, ORDER BY and LIMIT the list helper would add for params."""
    query = parse_list_query(params, spec, VIEWER)
    return statement.where(*query.where).order_by(*query.order_by).limit(query.page_size)


def _counted(statement: AnySelect, spec: ListSpec, **params: str) -> AnySelect:
    """The total the list helper counts for ``params`` (its WHERE, no ORDER BY)."""
    query = parse_list_query(params, spec, VIEWER)
    return select(func.count()).select_from(statement.where(*query.where).subquery())


def _sql(statement: AnySelect) -> str:
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def _indexes_used(plan: Any) -> set[str]:
    """Names of the indexes that an EXPLAIN (FORMAT JSON) plan scans."""
    found: set[str] = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("Node Type") in SCANS and "Index Name" in node:
                found.add(node["Index Name"])
            stack.extend(node.values())
    return found


ORDER_INDEXES = {"ix_messages_group_id_seq_live"}
"""Indexes meant to serve a list's ORDER BY as well: their plans are explained without sorts.

Otherwise, for a group with few rows among many (a long test run), a plan that finds the rows
by another index and sorts them costs about the same, and the planner's pick is a coin toss.
"""


async def _explain(database_url: str, statement: AnySelect, *, sorts: bool = True) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SET enable_seqscan = off")
        if not sorts:
            await conn.execute("SET enable_sort = off")
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {_sql(statement)}")
    finally:
        await conn.close()
    return _indexes_used(json.loads(raw) if isinstance(raw, str) else raw)


GROUP_IDS = select(StudyGroup.id)
CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)
"""The retention purge's cutoff in its explained batches (any date will do)."""
EXPLAINED = [
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, **{"filter[visibility]": "private"}),
        "ix_study_groups_visibility",
        id="groups-filter-visibility",
    ),
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, **{"filter[subject]": "Linear Algebra"}),
        "ix_study_groups_lower_subject",
        id="groups-filter-subject",
    ),
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, sort="-member_count"),
        "ix_study_groups_member_count",
        id="groups-sort-member-count",
    ),
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, sort="-created_at"),
        "ix_study_groups_created_at",
        id="groups-sort-created-at",
    ),
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, created_after="2026-01-01", sort="-created_at"),
        "ix_study_groups_created_at",
        id="groups-created-after",
    ),
    pytest.param(
        _windowed(GROUP_IDS, GROUP_LIST, sort="name"), "ix_study_groups_name", id="groups-sort-name"
    ),
    pytest.param(
        _windowed(group_repo.groups_visible_to(VIEWER), GROUP_LIST, **{"filter[member]": "me"}),
        "ix_memberships_user_id",
        id="groups-filter-member-me",
    ),
    pytest.param(
        _windowed(group_repo.members_of(GROUP), MEMBER_LIST),
        "pk_memberships",
        id="members-of-group",
    ),
    pytest.param(
        _windowed(select(User.id), USER_LIST), "uq_users_username", id="users-sort-username"
    ),
    pytest.param(
        _windowed(select(User.id), USER_LIST, sort="-created_at"),
        "ix_users_created_at",
        id="users-sort-created-at",
    ),
    pytest.param(
        _windowed(message_repo.messages_of(GROUP), MESSAGE_LIST),
        "ix_messages_group_id_seq_live",
        id="messages-newest-first",
    ),
    pytest.param(
        _windowed(message_repo.messages_of(GROUP), MESSAGE_LIST, sort="seq").where(
            Message.seq > 100
        ),
        "ix_messages_group_id_seq_live",
        id="messages-after-seq",
    ),
    pytest.param(
        _counted(select(Message.id), MESSAGE_LIST, search="Tom & Jerry"),
        "ix_messages_group_id_body_trgm",
        id="messages-search-trigram",
    ),
    pytest.param(
        _counted(GROUP_IDS, GROUP_LIST, search="R&D lab"),
        "ix_study_groups_name_trgm",
        id="groups-search-name-trigram",
    ),
    pytest.param(
        _counted(GROUP_IDS, GROUP_LIST, search="R&D lab"),
        "ix_study_groups_description_trgm",
        id="groups-search-description-trigram",
    ),
    pytest.param(
        _windowed(
            group_repo.assignments_of(GROUP), ASSIGNMENT_LIST, **{"filter[due_after]": "2026-01-01"}
        ),
        "ix_assignments_group_id_due_at",
        id="assignments-due-after",
    ),
    pytest.param(
        _windowed(group_repo.invites_of(VIEWER), INVITE_LIST, **{"filter[status]": "declined"}),
        "ix_invites_invitee_id_status",
        id="invites-of-user",
    ),
    *(
        pytest.param(batch_of(kind, CUTOFF), index, id=f"retention-{kind.value}-{index}")
        for kind, index in [
            (Kind.SESSIONS, "ix_refresh_tokens_expires_at"),
            (Kind.SESSIONS, "ix_refresh_tokens_revoked_at"),
            (Kind.EMAIL_TOKENS, "ix_account_tokens_expires_at"),
            (Kind.EMAIL_TOKENS, "ix_account_tokens_used_at"),
            (Kind.WEBHOOK_DELIVERIES, "ix_webhook_deliveries_finished"),
            (Kind.DEAD_LETTERS, "ix_dead_letters_created_at"),
            (Kind.READ_NOTIFICATIONS, "ix_notifications_read_at"),
        ]
    ),
]


@pytest.mark.parametrize(("statement", "index"), EXPLAINED)
async def test_list_sql_is_served_by_its_index(
    settings: Settings, node: RunningServer, statement: AnySelect, index: str
) -> None:
    """With sequential scans off, list and retention-purge SQL scans the index meant for it."""
    assert node.db.dialect == "postgresql"
    used = await _explain(settings.database_url, statement, sorts=index not in ORDER_INDEXES)
    assert index in used, f"{index} not used; plan scanned {sorted(used)}:\n{_sql(statement)}"
