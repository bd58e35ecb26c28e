"""Notifications end to end over HTTP and real sockets: a node, a worker process, SMTP.

Invites, assignments and mentions become notifications for the right people (never the one
who caused them), once each, pushed to every live socket of the recipient and listed by
``GET /notifications`` with filters and pages; settings decide which are emailed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from server.services.notifications import event_id
from server.store.models import NotificationEvent
from tests.factories.groups import add_member, assignment_payload, create_group, post_message
from tests.factories.users import Account, account
from tests.fixtures.notify_stack import Stack, eventually, notify_stack, token_of
from tests.fixtures.wsclient import socket

pytestmark = pytest.mark.slow
NOTES = "/api/v1/notifications"
SETTINGS = "/api/v1/users/me/notification-settings"


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Node, worker and SMTP server for this module."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    async with notify_stack(pg_url, prefix, tmp_path_factory.mktemp("notifications")) as made:
        yield made


async def _notes(http: httpx.AsyncClient, user: Account, **params: Any) -> dict[str, Any]:
    answer = await http.get(NOTES, headers=user.headers, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _kinds(
    stack: Stack, user: Account, count: int, kind: str | None = None
) -> list[dict[str, Any]]:
    """Wait until the user has ``count`` notifications (of ``kind``); return them, newest first."""
    params: dict[str, Any] = {"page_size": 100}
    if kind is not None:
        params["filter[kind]"] = kind

    async def enough() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = (await _notes(stack.http, user, **params))["data"]
        return data if len(data) >= count else None

    found: list[dict[str, Any]] = await eventually(enough)
    return found


async def _verified(stack: Stack) -> Account:
    user = await account(stack.http)
    email = (await stack.smtp.wait_for(user.email))[0]
    verified = await stack.http.post("/api/v1/auth/email/verify", json={"token": token_of(email)})
    assert verified.status_code == 200, verified.text
    return user


async def test_an_invite_is_pushed_to_every_socket_of_the_invitee_and_listed(stack: Stack) -> None:
    """Both live sockets of the invitee get the frame; the inviter gets nothing."""
    owner, invitee = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner, visibility="private")
    url = f"{stack.node.ws_url}/api/v1/ws"
    async with (
        socket(url, invitee.token) as first,
        socket(url, invitee.token) as second,
        socket(url, owner.token) as inviter,
    ):
        sent = await stack.http.post(
            f"/api/v1/study-groups/{group['id']}/invites",
            headers=owner.headers,
            json={"user_id": invitee.id},
        )
        pushed = [await ws.expect("notification", timeout=15) for ws in (first, second)]
        assert pushed[0] == pushed[1]
        note = pushed[0]["notification"]
        assert note["kind"] == "invite.received"
        assert note["group_id"] == group["id"]
        assert note["data"] == sent.json()["data"]
        assert note["read_at"] is None
        assert await inviter.silent("notification", 1.0)
    listed = await _notes(stack.http, invitee)
    assert [item["id"] for item in listed["data"]] == [note["id"]]
    assert (await _notes(stack.http, owner))["data"] == []


async def test_a_new_assignment_notifies_the_other_members(stack: Stack) -> None:
    """Every member but the one who set it gets assignment.created with the assignment."""
    owner, first, second = [await account(stack.http) for _ in range(3)]
    group = await create_group(stack.http, owner)
    for member in (first, second):
        await add_member(stack.http, owner, group["id"], member)
    created = await stack.http.post(
        f"/api/v1/study-groups/{group['id']}/assignments",
        headers=owner.headers,
        json=assignment_payload(),
    )
    assert created.status_code == 201, created.text
    for member in (first, second):
        (note,) = await _kinds(stack, member, 1, "assignment.created")
        assert note["kind"] == "assignment.created"
        assert note["data"] == created.json()["data"]
    assert (await _notes(stack.http, owner, **{"filter[kind]": "assignment.created"}))["data"] == []


async def _mentions(stack: Stack, user: Account) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await _notes(stack.http, user, **{"filter[kind]": "mention"}))[
        "data"
    ]
    return data


async def test_mentions_reach_named_members_only(stack: Stack) -> None:
    """Several names in one escaped body; not the author, not a non-member, once each."""
    author, bob, carol, outsider = [await account(stack.http) for _ in range(4)]
    group = await create_group(stack.http, author, visibility="private")
    for member in (bob, carol):
        await add_member(stack.http, author, group["id"], member)
    body = (
        f"<b>@{bob.username}</b> and '@{carol.username.upper()}', "
        f"not @{outsider.username} nor @{author.username}; mail {bob.username}@example.com"
    )
    url = f"{stack.node.ws_url}/api/v1/ws"
    async with socket(url, bob.token) as bob_socket, socket(url, author.token) as author_socket:
        ack = await author_socket.send_message(group["id"], body, "m-1")
        note = (await bob_socket.expect("notification", timeout=15))["notification"]
        assert note["kind"] == "mention"
        assert note["data"]["id"] == ack["message_id"]
        assert note["data"]["body"].startswith(f"&lt;b&gt;@{bob.username}&lt;/b&gt;")
        assert await author_socket.silent("notification", 1.0)
    assert len(await _kinds(stack, carol, 1, "mention")) == 1
    assert await _mentions(stack, outsider) == []
    assert await _mentions(stack, author) == []
    assert len(await _mentions(stack, bob)) == 1


async def test_an_edit_notifies_only_members_it_names_for_the_first_time(stack: Stack) -> None:
    """Documented choice: once per member and message; an edit adds newly named members."""
    author, bob, carol = [await account(stack.http) for _ in range(3)]
    group = await create_group(stack.http, author)
    for member in (bob, carol):
        await add_member(stack.http, author, group["id"], member)
    message = await post_message(stack.http, author, group["id"], f"hello @{bob.username}")
    await _kinds(stack, bob, 1, "mention")
    edited = await stack.http.patch(
        f"/api/v1/study-groups/{group['id']}/messages/{message['id']}",
        headers=author.headers,
        json={"body": f"hello @{bob.username} and @{carol.username}"},
    )
    assert edited.status_code == 200, edited.text
    (note,) = await _kinds(stack, carol, 1, "mention")
    assert note["data"]["body"] == f"hello @{bob.username} and @{carol.username}"
    await asyncio.sleep(1.0)
    assert len(await _mentions(stack, bob)) == 1


async def test_mention_copies_follow_an_edit_and_go_with_a_deletion(stack: Stack) -> None:
    """Soft-deleted rows never appear in reads, nor do copies of them in notifications."""
    author, bob = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, author)
    await add_member(stack.http, author, group["id"], bob)
    message = await post_message(stack.http, author, group["id"], f"my pin is 1234 @{bob.username}")
    await _kinds(stack, bob, 1, "mention")
    url = f"/api/v1/study-groups/{group['id']}/messages/{message['id']}"
    edited = await stack.http.patch(
        url, headers=author.headers, json={"body": f"oops, ask me @{bob.username}"}
    )
    assert edited.status_code == 200, edited.text
    (note,) = await _mentions(stack, bob)
    assert note["data"] == edited.json()["data"]  # the edited text and edited_at
    assert (await stack.http.delete(url, headers=author.headers)).status_code == 204
    assert await _mentions(stack, bob) == []


async def test_assignment_copies_follow_an_edit_and_go_with_a_deletion(stack: Stack) -> None:
    """assignment.created shows the assignment as it is; deleted, its notifications go."""
    owner, member = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner)
    await add_member(stack.http, owner, group["id"], member)
    url = f"/api/v1/study-groups/{group['id']}/assignments"
    created = await stack.http.post(url, headers=owner.headers, json=assignment_payload())
    assert created.status_code == 201, created.text
    await _kinds(stack, member, 1, "assignment.created")
    item = f"{url}/{created.json()['data']['id']}"
    changed = await stack.http.patch(item, headers=owner.headers, json={"title": "Essay, v2"})
    assert changed.status_code == 200, changed.text
    kind = {"filter[kind]": "assignment.created"}
    (note,) = (await _notes(stack.http, member, **kind))["data"]
    assert note["data"] == changed.json()["data"]
    assert (await stack.http.delete(item, headers=owner.headers)).status_code == 204
    assert (await _notes(stack.http, member, **kind))["data"] == []


async def test_a_fan_out_after_its_subject_was_deleted_notifies_nobody(stack: Stack) -> None:
    """An event fanned out late (a queued job) about a message deleted meanwhile: nothing."""
    author, bob = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, author)
    await add_member(stack.http, author, group["id"], bob)
    message = await post_message(stack.http, author, group["id"], f"hi @{bob.username}")
    await _kinds(stack, bob, 1, "mention")
    url = f"/api/v1/study-groups/{group['id']}/messages/{message['id']}"
    assert (await stack.http.delete(url, headers=author.headers)).status_code == 204
    event = event_id("mention", message["id"])
    async with stack.node.db.session() as session, session.begin():
        await session.execute(
            update(NotificationEvent).where(NotificationEvent.id == event).values(processed_at=None)
        )
    assert await stack.node.domain.notifications.fan_out(event) == 0
    assert await _mentions(stack, bob) == []


async def test_a_deleted_groups_notifications_go(stack: Stack) -> None:
    """An invite into a group deleted since cannot be answered: it is not listed, nor unread."""
    owner, invitee = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner, visibility="private")
    sent = await stack.http.post(
        f"/api/v1/study-groups/{group['id']}/invites",
        headers=owner.headers,
        json={"user_id": invitee.id},
    )
    assert sent.status_code == 201, sent.text
    await _kinds(stack, invitee, 1, "invite.received")
    gone = await stack.http.delete(f"/api/v1/study-groups/{group['id']}", headers=owner.headers)
    assert gone.status_code == 204, gone.text
    assert (await _notes(stack.http, invitee, **{"filter[unread]": "true"}))["data"] == []


async def test_a_fan_out_run_twice_notifies_once(stack: Stack) -> None:
    """The same event fanned out again (a redelivered job) creates nothing new."""
    owner, member = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner)
    await add_member(stack.http, owner, group["id"], member)
    created = await stack.http.post(
        f"/api/v1/study-groups/{group['id']}/assignments",
        headers=owner.headers,
        json=assignment_payload(),
    )
    await _kinds(stack, member, 1, "assignment.created")
    event = event_id("assignment.created", created.json()["data"]["id"])
    assert await stack.node.domain.notifications.fan_out(event) == 0
    await stack.node.domain.outbox.release([event, event])  # two more jobs, through the worker
    await asyncio.sleep(1.0)
    kind = {"filter[kind]": "assignment.created"}
    assert len((await _notes(stack.http, member, **kind))["data"]) == 1


async def test_read_read_all_filters_and_pages(stack: Stack) -> None:
    """Newest first, filter[kind] and filter[unread]=true, read one, read all, bad values."""
    owner, member = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner)
    await add_member(stack.http, owner, group["id"], member)
    for _ in range(3):
        await stack.http.post(
            f"/api/v1/study-groups/{group['id']}/assignments",
            headers=owner.headers,
            json=assignment_payload(),
        )
    await post_message(stack.http, owner, group["id"], f"look @{member.username}")
    notes = await _kinds(stack, member, 5)  # an invite, three assignments, a mention
    stamps = [note["created_at"] for note in notes]
    assert stamps == sorted(stamps, reverse=True)
    assert notes[-1]["kind"] == "invite.received"
    first = await _notes(stack.http, member, page=1, page_size=3)
    second = await _notes(stack.http, member, page=2, page_size=3)
    assert first["pagination"] == {"page": 1, "page_size": 3, "total": 5, "total_pages": 2}
    assert len(first["data"]) == 3 and len(second["data"]) == 2
    assert {n["id"] for n in first["data"] + second["data"]} == {n["id"] for n in notes}
    kinds = await _notes(stack.http, member, **{"filter[kind]": "Assignment.Created"})
    assert [n["kind"] for n in kinds["data"]] == ["assignment.created"] * 3
    read = await stack.http.post(f"{NOTES}/{notes[0]['id']}/read", headers=member.headers)
    assert read.status_code == 200 and read.json()["data"]["read_at"] is not None
    unread = await _notes(stack.http, member, **{"filter[unread]": "true"})
    assert unread["pagination"]["total"] == 4
    assert (await stack.http.post(f"{NOTES}/read-all", headers=member.headers)).status_code == 204
    assert (await _notes(stack.http, member, **{"filter[unread]": "true"}))["data"] == []
    for bad in ({"filter[unread]": "maybe"}, {"filter[kind]": "party"}, {"filter[x]": "1"}):
        answer = await stack.http.get(NOTES, headers=member.headers, params=bad)
        assert answer.status_code == 400, bad
    theirs = await stack.http.post(f"{NOTES}/{notes[0]['id']}/read", headers=owner.headers)
    assert theirs.status_code == 404
    missing = await stack.http.post(f"{NOTES}/{uuid.uuid4()}/read", headers=member.headers)
    assert missing.status_code == 404


async def test_settings_have_the_contract_defaults_and_decide_the_emails(stack: Stack) -> None:
    """Defaults; a partial PUT; assignment.created emailed once switched on, mention off."""
    owner, member = await account(stack.http), await _verified(stack)
    defaults = await stack.http.get(SETTINGS, headers=member.headers)
    assert defaults.json()["data"] == {
        "email": {
            "invite.received": True,
            "assignment.created": False,
            "assignment.due_soon": True,
            "mention": True,
        }
    }
    changed = await stack.http.put(
        SETTINGS,
        headers=member.headers,
        json={"email": {"assignment.created": True, "mention": False}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["email"]["assignment.created"] is True
    assert changed.json()["data"]["email"]["invite.received"] is True
    bad = await stack.http.put(SETTINGS, headers=member.headers, json={"email": {"party": True}})
    assert bad.status_code == 400
    group = await create_group(stack.http, owner)
    await add_member(stack.http, owner, group["id"], member)  # invite.received: emailed
    title = "Essay <draft> & notes"
    await stack.http.post(
        f"/api/v1/study-groups/{group['id']}/assignments",
        headers=owner.headers,
        json=assignment_payload(title=title),
    )
    await post_message(stack.http, owner, group["id"], f"hey @{member.username}")
    await _kinds(stack, member, 3)
    emails = await stack.smtp.wait_for(member.email, 3)  # verification, invite, assignment
    subjects = sorted(str(email.message["Subject"]) for email in emails[1:])
    invited = [s for s in subjects if " invited you to " in s]
    assigned = [s for s in subjects if s.startswith("New assignment in ")]
    assert len(invited) == 1 and len(assigned) == 1 and assigned[0].endswith(title)
    assignment_email = next(e for e in emails if "New assignment" in str(e.message["Subject"]))
    assert "Essay &lt;draft&gt; &amp; notes" in assignment_email.html
    assert assignment_email.message["List-Unsubscribe"].endswith("/settings/notifications>")
    await asyncio.sleep(1.0)
    assert len(stack.smtp.to(member.email)) == 3  # no mention email


async def test_push_reaches_a_socket_on_the_node_from_the_worker(stack: Stack) -> None:
    """The worker publishes on the bus; the node's hub writes the frame (user-directed)."""
    owner, member = await account(stack.http), await account(stack.http)
    group = await create_group(stack.http, owner)
    await add_member(stack.http, owner, group["id"], member)
    url = f"{stack.node.ws_url}/api/v1/ws"
    async with socket(url, member.token) as ws:
        await _assign(stack, owner, group["id"])
        frame = await ws.expect("notification", timeout=15)
    while frame["notification"]["kind"] != "assignment.created":
        frame = await ws.expect("notification", timeout=15)
    assert frame["notification"]["group_id"] == group["id"]


async def _assign(stack: Stack, owner: Account, group_id: str) -> None:
    answer = await stack.http.post(
        f"/api/v1/study-groups/{group_id}/assignments",
        headers=owner.headers,
        json=assignment_payload(),
    )
    assert answer.status_code == 201, answer.text
