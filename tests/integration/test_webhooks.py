"""Webhooks over HTTP, delivered to a local fake receiver (contract section 3).

The node runs on PostgreSQL with the in-process job queue, so deliveries run in the node
itself; ``test_worker_delivers_webhooks`` covers the Redis queue and the worker process.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from protocol.objects import GroupMember
from server.container import BrokerJobs
from server.realtime.persister import Persister
from server.security.signing import verify
from server.tasks.jobs import replay_dead_letter
from tests.factories.groups import (
    GROUPS,
    add_member,
    assignment_payload,
    create_group,
    post_message,
    set_role,
)
from tests.factories.users import Account, account
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.settings import make_settings
from tests.fixtures.webhook_receiver import Receiver, webhook_receiver

HOOKS = "/api/v1/webhooks"
ALL_EVENTS = [
    "message.created",
    "invite.created",
    "assignment.created",
    "assignment.updated",
    "member.joined",
]


@pytest.fixture(scope="module")
async def hook_node(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A node that may deliver to 127.0.0.1 and retries after 50 ms and 200 ms."""
    settings = make_settings(
        pg_url,
        None,
        "sbhooks:",
        tmp_path_factory.mktemp("hooks") / "media",
        webhook_allowed_hosts=["127.0.0.1/32"],
        webhook_retry_base_s=0.05,
        webhook_timeout_s=0.5,
    )
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def http(hook_node: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the webhook node."""
    async with httpx.AsyncClient(base_url=hook_node.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A fake receiver on 127.0.0.1."""
    async with webhook_receiver() as running:
        yield running


async def subscribe(
    http: httpx.AsyncClient, who: Account, group_id: str, url: str, events: list[str]
) -> dict[str, Any]:
    """Create a webhook; assert 201 and return it (with its secret)."""
    response = await http.post(
        HOOKS, headers=who.headers, json={"url": url, "events": events, "group_id": group_id}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def deliveries(http: httpx.AsyncClient, who: Account, hook_id: str) -> list[dict[str, Any]]:
    """A webhook's deliveries as its manager sees them."""
    response = await http.get(f"{HOOKS}/{hook_id}/deliveries", headers=who.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def settled(
    http: httpx.AsyncClient, who: Account, hook_id: str, count: int = 1
) -> list[dict[str, Any]]:
    """Deliveries once ``count`` of them reached a final status (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        items = await deliveries(http, who, hook_id)
        done = [d for d in items if d["status"] in {"succeeded", "dead"}]
        if len(done) >= count or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.05)


async def test_create_shows_the_secret_once_and_lists_only_managed_groups(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """201 with a secret; the list has no secret and only the caller's managed groups."""
    owner, admin, member, stranger = [await account(http) for _ in range(4)]
    group = await create_group(http, owner, visibility="private")
    await add_member(http, owner, group["id"], admin)
    await add_member(http, owner, group["id"], member)
    await set_role(http, owner, group["id"], admin, "admin")

    hook = await subscribe(http, admin, group["id"], receiver.url(), ["member.joined"])
    assert set(hook) == {"id", "group_id", "url", "events", "active", "created_at", "secret"}
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["events"] == ["member.joined"] and hook["active"] is True

    for manager in (owner, admin):
        listed = await http.get(HOOKS, headers=manager.headers)
        assert listed.status_code == 200
        body = listed.json()
        assert [item["id"] for item in body["data"]] == [hook["id"]]
        assert "secret" not in body["data"][0]
        assert body["pagination"]["total"] == 1
    for outsider in (member, stranger):
        listed = await http.get(HOOKS, headers=outsider.headers)
        assert listed.json()["data"] == [] and listed.json()["pagination"]["total"] == 0


async def test_a_group_has_at_most_twenty_webhooks(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The 21st is 409, also when asked for at once; a deletion makes room for one."""
    owner = await account(http)
    group = await create_group(http, owner)
    body = {"url": receiver.url(), "events": ["member.joined"], "group_id": group["id"]}
    answers = []
    for _ in range(3):  # eight at once: under the caller's ten running calls
        answers += await asyncio.gather(
            *(http.post(HOOKS, headers=owner.headers, json=body) for _ in range(8))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 20 + [409] * 4
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert refused.json()["error"]["code"] == "CONFLICT"
    assert "at most 20 webhooks" in refused.json()["error"]["message"]
    listed = await http.get(HOOKS, headers=owner.headers, params={"page_size": 100})
    assert listed.json()["pagination"]["total"] == 20
    kept = [a.json()["data"]["id"] for a in answers if a.status_code == 201]
    assert (await http.delete(f"{HOOKS}/{kept[0]}", headers=owner.headers)).status_code == 204
    assert (await http.post(HOOKS, headers=owner.headers, json=body)).status_code == 201
    assert (await http.post(HOOKS, headers=owner.headers, json=body)).status_code == 409


async def test_who_may_create_and_read(http: httpx.AsyncClient, receiver: Receiver) -> None:
    """A member gets 403, a stranger 404 (private group); others' webhooks answer 404."""
    owner, member, stranger = [await account(http) for _ in range(3)]
    group = await create_group(http, owner, visibility="private")
    await add_member(http, owner, group["id"], member)
    body = {"url": receiver.url(), "events": ["member.joined"], "group_id": group["id"]}

    as_member = await http.post(HOOKS, headers=member.headers, json=body)
    assert as_member.status_code == 403 and as_member.json()["error"]["code"] == "FORBIDDEN"
    as_stranger = await http.post(HOOKS, headers=stranger.headers, json=body)
    assert as_stranger.status_code == 404
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    for who in (member, stranger):
        for method, path in (("GET", "/deliveries"), ("DELETE", "")):
            response = await http.request(
                method, f"{HOOKS}/{hook['id']}{path}", headers=who.headers
            )
            assert response.status_code == 404, (method, path, response.text)
    missing = await http.delete(f"{HOOKS}/{uuid.uuid4()}", headers=owner.headers)
    assert missing.status_code == 404
    anonymous = await http.get(HOOKS)
    assert anonymous.status_code == 401


@pytest.mark.parametrize("url", ["http://no-such-host.invalid/hooks", "http://10.0.0.7/hooks"])
async def test_the_right_is_checked_before_the_url_is_resolved(
    http: httpx.AsyncClient, url: str
) -> None:
    """Whoever may not manage a group learns nothing of how a host name resolves."""
    owner, member, stranger = [await account(http) for _ in range(3)]
    group = await create_group(http, owner, visibility="private")
    await add_member(http, owner, group["id"], member)
    body = {"url": url, "events": ["member.joined"], "group_id": group["id"]}
    answers = [
        await http.post(HOOKS, headers=member.headers, json=body),
        await http.post(HOOKS, headers=stranger.headers, json=body),
        await http.post(
            HOOKS, headers=stranger.headers, json={**body, "group_id": str(uuid.uuid4())}
        ),
    ]
    assert [answer.status_code for answer in answers] == [403, 404, 404]
    refused = await http.post(HOOKS, headers=owner.headers, json=body)
    assert refused.status_code == 400  # the owner may, so the URL is what is wrong


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hooks",
        "http://10.0.0.7/hooks",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://224.0.0.1/",
        "http://127.0.0.2/",
        "http://user:pass@example.com/",
        "not a url",
    ],
)
async def test_unsafe_urls_are_refused(http: httpx.AsyncClient, url: str) -> None:
    """Non-http(s) and non-public targets: 400 on the url field, nothing stored."""
    owner = await account(http)
    group = await create_group(http, owner)
    response = await http.post(
        HOOKS,
        headers=owner.headers,
        json={"url": url, "events": ["member.joined"], "group_id": group["id"]},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [problem["field"] for problem in error["details"]["fields"]] == ["url"]
    listed = await http.get(HOOKS, headers=owner.headers)
    assert listed.json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["message.sent"]}, "events"),
        ({"url": ""}, "url"),
        ({"group_id": "nope"}, "group_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_bodies_get_field_errors(
    http: httpx.AsyncClient, receiver: Receiver, body: dict[str, Any], field: str
) -> None:
    """Wrong event names, empty lists, bad ids, unknown fields: 400 naming the field."""
    owner = await account(http)
    group = await create_group(http, owner)
    payload = {"url": receiver.url(), "events": ["member.joined"], "group_id": group["id"]}
    response = await http.post(HOOKS, headers=owner.headers, json={**payload, **body})
    assert response.status_code == 400, response.text
    fields = [problem["field"] for problem in response.json()["error"]["details"]["fields"]]
    assert any(name.startswith(field) for name in fields), fields


async def test_every_event_is_delivered_signed(http: httpx.AsyncClient, receiver: Receiver) -> None:
    """Each of the five events arrives once, signed, with the contract's headers and body."""
    owner, joiner, invitee = [await account(http) for _ in range(3)]
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ALL_EVENTS)
    gid = group["id"]

    joined = await http.post(f"{GROUPS}/{gid}/join", headers=joiner.headers)
    assert joined.status_code == 200
    sent = await http.post(
        f"{GROUPS}/{gid}/invites", headers=owner.headers, json={"user_id": invitee.id}
    )
    assert sent.status_code == 201
    assignment = await http.post(
        f"{GROUPS}/{gid}/assignments", headers=owner.headers, json=assignment_payload()
    )
    assert assignment.status_code == 201
    changed = await http.patch(
        f"{GROUPS}/{gid}/assignments/{assignment.json()['data']['id']}",
        headers=owner.headers,
        json={"title": "Changed title"},
    )
    assert changed.status_code == 200
    message = await post_message(http, joiner, gid, "hello hooks")

    received = await receiver.wait_for(5)
    by_type = {item.json()["type"]: item for item in received}
    assert sorted(by_type) == sorted(ALL_EVENTS)
    now = int(time.time())
    for event, item in by_type.items():
        payload = item.json()
        assert set(payload) == {"id", "type", "created_at", "data"}
        assert item.headers["x-studybuddy-event"] == event
        assert item.headers["x-studybuddy-delivery"] == payload["id"]
        assert item.headers["content-type"] == "application/json"
        assert verify(hook["secret"], item.headers["x-studybuddy-signature"], item.body, now)
        assert not verify("whsec_wrong", item.headers["x-studybuddy-signature"], item.body, now)
        assert item.path == "/hooks"
    assert by_type["member.joined"].json()["data"]["user_id"] == joiner.id
    assert by_type["member.joined"].json()["data"]["group_id"] == gid
    assert by_type["invite.created"].json()["data"]["invitee_id"] == invitee.id
    assert by_type["assignment.updated"].json()["data"]["title"] == "Changed title"
    assert by_type["message.created"].json()["data"]["id"] == message["id"]
    assert by_type["message.created"].json()["data"]["body"] == "hello hooks"
    assert by_type["message.created"].json()["data"]["seq"] == message["seq"]

    items = await settled(http, owner, hook["id"], 5)
    assert {d["status"] for d in items} == {"succeeded"}
    assert {d["event"] for d in items} == set(ALL_EVENTS)
    assert all(d["attempts"] == 1 and d["response_status"] == 200 for d in items)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 5  # nothing twice


async def test_only_subscribed_events_of_the_group_arrive(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A webhook for assignment.created hears nothing of joins or of other groups."""
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    other = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["assignment.created"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    await http.post(
        f"{GROUPS}/{other['id']}/assignments", headers=owner.headers, json=assignment_payload()
    )
    created = await http.post(
        f"{GROUPS}/{group['id']}/assignments", headers=owner.headers, json=assignment_payload()
    )
    received = await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [item.json()["type"] for item in receiver.received] == ["assignment.created"]
    assert received[0].json()["data"]["id"] == created.json()["data"]["id"]
    assert len(await settled(http, owner, hook["id"])) == 1


async def test_failures_are_retried_with_backoff_then_succeed(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """500, 503, then 200: three attempts, the same delivery id, 1x and 4x the base apart."""
    receiver.statuses = [500, 503]
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)

    attempts = await receiver.wait_for(3)
    assert len({item.headers["x-studybuddy-delivery"] for item in attempts}) == 1
    assert len({item.body for item in attempts}) == 1  # the same body every time
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # The waits are 50 and 200 ms; each gap also holds an attempt's bookkeeping (a database
    # update and a new connection), which a loaded 2-core machine can stretch by ~0.2 s.
    assert 0.05 <= gaps[0] < 0.2 + 0.15 and 0.2 <= gaps[1] < 0.2 + 0.4, gaps
    [delivery] = await settled(http, owner, hook["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3 and delivery["response_status"] == 200
    assert delivery["last_error"] is None


async def test_three_failures_make_a_delivery_dead(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Three non-2xx answers: dead after the third attempt, nothing more is tried."""
    receiver.statuses = [500, 502, 404]
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    [delivery] = await settled(http, owner, hook["id"])
    assert delivery["status"] == "dead" and delivery["attempts"] == 3
    assert delivery["response_status"] == 404 and "404" in delivery["last_error"]
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 3


@pytest.mark.parametrize("loss", ["demoted", "kicked"])
async def test_a_webhook_stops_with_its_creators_right_to_manage(
    http: httpx.AsyncClient, receiver: Receiver, loss: str
) -> None:
    """An admin demoted or kicked: their webhook gets the group's events no more."""
    owner, admin, joiner = await account(http), await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    await add_member(http, owner, group["id"], admin)
    await set_role(http, owner, group["id"], admin, "admin")
    theirs = await subscribe(http, admin, group["id"], receiver.url("/admin"), ["member.joined"])
    ours = await subscribe(http, owner, group["id"], receiver.url("/owner"), ["member.joined"])
    members = f"{GROUPS}/{group['id']}/members/{admin.id}"
    if loss == "demoted":
        changed = await http.patch(members, headers=owner.headers, json={"role": "member"})
    else:
        changed = await http.delete(members, headers=owner.headers)
    assert changed.status_code in (200, 204)
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    [delivery] = await settled(http, owner, ours["id"])
    assert delivery["status"] == "succeeded"
    assert await deliveries(http, owner, theirs["id"]) == []
    assert [r.path for r in receiver.received] == ["/owner"]
    listed = (await http.get(HOOKS, headers=owner.headers)).json()["data"]
    active = {hook["id"]: hook["active"] for hook in listed}
    assert active == {ours["id"]: True, theirs["id"]: False}  # it says it receives nothing
    if loss == "demoted":  # promoted again, they get it back
        await set_role(http, owner, group["id"], admin, "admin")
        listed = (await http.get(HOOKS, headers=owner.headers)).json()["data"]
        assert {hook["id"]: hook["active"] for hook in listed}[theirs["id"]] is True


async def test_a_timeout_counts_as_a_failed_attempt(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A receiver slower than the timeout: failed attempts with no status, then dead."""
    receiver.delay_s = 1.0
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    [delivery] = await settled(http, owner, hook["id"])
    assert delivery["status"] == "dead" and delivery["attempts"] == 3
    assert delivery["response_status"] is None and delivery["last_error"] == "timed out"


async def test_a_deleted_webhook_gets_nothing_more(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """DELETE 204; later events are not delivered and the webhook is gone for its owner."""
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    deleted = await http.delete(f"{HOOKS}/{hook['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    await asyncio.sleep(0.5)
    assert receiver.received == []
    gone = await http.get(f"{HOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    assert gone.status_code == 404
    again = await http.delete(f"{HOOKS}/{hook['id']}", headers=owner.headers)
    assert again.status_code == 404


async def _delivery_rows(node: RunningServer, hook_id: str) -> list[dict[str, Any]]:
    """A webhook's delivery rows, read from the database (its manager may no longer see them)."""
    async with node.db.session() as session:
        rows = await session.execute(
            text(
                "SELECT status, attempts, last_error FROM webhook_deliveries WHERE webhook_id = :w"
            ),
            {"w": uuid.UUID(hook_id)},
        )
        return [dict(row._mapping) for row in rows]


@pytest.mark.parametrize("loss", ["deleted", "demoted", "group deleted"])
async def test_retries_stop_when_the_webhook_stops_receiving(
    http: httpx.AsyncClient, receiver: Receiver, hook_node: RunningServer, loss: str
) -> None:
    """A webhook that stops receiving while an attempt is under way gets no retry.

    Deleted, its creator demoted, or its group deleted: the delivery is dead with the reason.
    The webhook was read once, before the first attempt, so the retries still went out.
    """
    receiver.delay_s = 0.8  # over the 0.5 s timeout: every attempt fails, slowly
    owner, admin, joiner = await account(http), await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    await add_member(http, owner, group["id"], admin)
    await set_role(http, owner, group["id"], admin, "admin")
    hook = await subscribe(http, admin, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    await receiver.wait_for(1)  # the first attempt is under way
    if loss == "deleted":
        stopped = await http.delete(f"{HOOKS}/{hook['id']}", headers=admin.headers)
    elif loss == "demoted":
        url = f"{GROUPS}/{group['id']}/members/{admin.id}"
        stopped = await http.patch(url, headers=owner.headers, json={"role": "member"})
    else:
        stopped = await http.delete(f"{GROUPS}/{group['id']}", headers=owner.headers)
    assert stopped.status_code in (200, 204), stopped.text
    deadline = time.monotonic() + 10
    while (rows := await _delivery_rows(hook_node, hook["id"]))[0]["status"] != "dead":
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.05)
    assert rows == [
        {
            "status": "dead",
            "attempts": 1,
            "last_error": "skipped: the webhook no longer receives the group's events",
        }
    ]
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1


async def test_a_retry_after_an_erasure_sends_the_blanked_payload(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A joiner erases their account while member.joined is retried: no name of theirs.

    The payload was read once, before the first attempt, and sent again unchanged.
    """
    receiver.delay_s = 0.8
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    first = (await receiver.wait_for(1))[0]
    assert joiner.username.encode() in first.body
    gone = await http.request(
        "DELETE", "/api/v1/users/me", headers=joiner.headers, json={"password": joiner.password}
    )
    assert gone.status_code == 204
    later = (await receiver.wait_for(2))[1]
    assert later.headers["x-studybuddy-delivery"] == first.headers["x-studybuddy-delivery"]
    assert joiner.username.encode() not in later.body


async def test_deliveries_list_filters_and_pages(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """filter[status], filter[event] and paging work; unknown filters are 400."""
    receiver.statuses = [500, 500, 500]
    owner = await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    for count in (1, 2, 3):  # the first one dies (three 500s), the others succeed
        joiner = await account(http)
        await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
        items = await settled(http, owner, hook["id"], count)
    assert sorted(d["status"] for d in items) == ["dead", "succeeded", "succeeded"]
    url = f"{HOOKS}/{hook['id']}/deliveries"
    dead = await http.get(url, headers=owner.headers, params={"filter[status]": "dead"})
    assert [d["status"] for d in dead.json()["data"]] == ["dead"]
    paged = await http.get(url, headers=owner.headers, params={"page_size": 2, "page": 2})
    assert len(paged.json()["data"]) == 1 and paged.json()["pagination"]["total"] == 3
    bad = await http.get(url, headers=owner.headers, params={"filter[colour]": "red"})
    assert bad.status_code == 400


async def test_message_events_are_recorded_once_per_message(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Twenty messages: twenty deliveries in seq order of creation, no duplicates."""
    owner = await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["message.created"])
    sent = [await post_message(http, owner, group["id"]) for _ in range(20)]
    received = await receiver.wait_for(20)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 20
    assert sorted(item.json()["data"]["seq"] for item in received) == [m["seq"] for m in sent]
    assert len(await settled(http, owner, hook["id"], 20)) == 20


async def test_openapi_documents_webhooks(http: httpx.AsyncClient) -> None:
    """The four operations are in /openapi.json with the event names."""
    spec = (await http.get("/openapi.json")).json()
    assert {"post", "get"} <= set(spec["paths"]["/api/v1/webhooks"])
    assert "delete" in spec["paths"]["/api/v1/webhooks/{webhook_id}"]
    assert "get" in spec["paths"]["/api/v1/webhooks/{webhook_id}/deliveries"]
    assert "message.created" in str(spec["components"])


async def test_start_up_requeues_deliveries_left_pending(
    http: httpx.AsyncClient, receiver: Receiver, hook_node: RunningServer
) -> None:
    """A delivery staged but never queued (a crash between commit and queue) is sent later."""
    owner = await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["invite.created"])
    webhooks = hook_node.domain.deliveries
    data = GroupMember(
        user_id=uuid.UUID(owner.id),
        username="x",
        display_name="x",
        role="owner",
        joined_at=datetime.now(UTC),
        group_id=uuid.UUID(group["id"]),
    )
    async with hook_node.db.session() as session, session.begin():
        staged = await webhooks.stage(
            session, [(uuid.UUID(group["id"]), "left-behind", data)], "invite.created"
        )
    assert len(staged) == 1
    await asyncio.sleep(0.2)
    assert receiver.received == []
    assert await webhooks.requeue_stalled(older_than_s=0.1) >= 1
    [item] = await receiver.wait_for(1)
    assert item.headers["x-studybuddy-delivery"] == str(staged[0])
    assert (await settled(http, owner, hook["id"]))[0]["status"] == "succeeded"


class _BrokenHook:
    """A batch hook whose staging fails after touching the database."""

    async def stage(self, session: Any, rows: Any) -> list[uuid.UUID]:
        await session.execute(text("SELECT no_such_column FROM webhooks"))
        return []

    async def release(self, ids: Any) -> None:
        raise AssertionError("nothing was staged")


async def test_a_webhook_failure_never_holds_messages_back(hook_node: RunningServer) -> None:
    """The persister stages events in a savepoint: a failure there leaves its batch intact."""
    async with hook_node.db.session() as session, session.begin():
        row = {
            "id": uuid.uuid4(),
            "group_id": uuid.uuid4(),
            "seq": 1,
            "author_id": None,
            "body": "hi",
            "client_msg_id": "c1",
            "created_at": datetime.now(UTC),
        }
        staged = await Persister._stage(session, _BrokenHook(), [row])
        assert staged == []
        assert (await session.execute(text("SELECT 1"))).scalar() == 1  # still usable


async def test_a_dead_delivery_is_a_dead_letter_that_replays_into_a_fresh_delivery(
    hook_node: RunningServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Dead after three attempts: a dead letter; replayed, the same delivery succeeds."""
    receiver.statuses = [503, 503, 503]
    owner, joiner = await account(http), await account(http)
    group = await create_group(http, owner, visibility="public")
    hook = await subscribe(http, owner, group["id"], receiver.url(), ["member.joined"])
    await http.post(f"{GROUPS}/{group['id']}/join", headers=joiner.headers)
    [delivery] = await settled(http, owner, hook["id"])
    assert delivery["status"] == "dead"
    domain = hook_node.domain
    letters = [
        letter
        for letter in await domain.dead_letters.list()
        if letter.task == "webhooks.deliver" and letter.args == [delivery["id"]]
    ]
    assert len(letters) == 1 and "503" in letters[0].last_error
    await replay_dead_letter(domain, BrokerJobs(hook_node.node.resources.broker), letters[0].id)
    [replayed] = await settled(http, owner, hook["id"])
    deadline = time.monotonic() + 10
    while replayed["status"] != "succeeded" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        [replayed] = await deliveries(http, owner, hook["id"])
    assert (replayed["id"], replayed["status"], replayed["attempts"]) == (
        delivery["id"],
        "succeeded",
        1,
    )
    assert receiver.received[-1].headers["x-studybuddy-delivery"] == delivery["id"]
