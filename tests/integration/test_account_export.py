"""The account export of a busy user, over HTTP, on PostgreSQL and on SQLite.

It holds every kind of data kept about them, decodes strictly as the documented
``protocol.export.AccountExportDocument`` (whose JSON Schema is the file in docs/schemas),
leaks no secret, and is streamed in batches.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest

from protocol.export import AccountExportDocument
from tests.factories.groups import (
    GROUPS,
    assignment_payload,
    create_group,
    invite,
    post_message,
    public_group,
)
from tests.factories.rows import many_messages
from tests.factories.users import Account, account, login
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import migrate
from tests.fixtures.settings import make_settings

EXPORT = "/api/v1/users/me/export"
SECRETS = ("password_hash", "token_hash", "mfa_secret", '"secret"')


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def export_node(
    request: pytest.FixtureRequest, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A node on PostgreSQL or SQLite that accepts webhooks to 127.0.0.1."""
    folder = tmp_path_factory.mktemp(f"export-{request.param}")
    url = pg_url
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'export.db'}"
        await asyncio.to_thread(migrate, url)
    settings = make_settings(
        url,
        None,
        "sbexport:",
        folder / "media",
        webhook_allowed_hosts=["127.0.0.1/32"],
        http_send_timeout_s=1.0,
    )
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def http(export_node: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the export node."""
    async with httpx.AsyncClient(base_url=export_node.base_url, timeout=20) as client:
        yield client


@dataclass
class Busy:
    """What the busy user did, to find again in their export."""

    user: Account
    own_group: str
    messages: list[dict[str, Any]]
    deleted: str


async def _refresh(http: httpx.AsyncClient, who: Account) -> None:
    csrf = who.cookies["csrf_token"]
    cookies = {"refresh_token": who.cookies["refresh_token"], "csrf_token": csrf}
    async with httpx.AsyncClient(base_url=http.base_url, cookies=cookies) as jar:
        refreshed = await jar.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 200, refreshed.text


async def _notified(http: httpx.AsyncClient, who: Account) -> None:
    for _ in range(100):
        listed = await http.get("/api/v1/notifications", headers=who.headers)
        if listed.json()["data"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no notification arrived")


async def _groups_and_messages(http: httpx.AsyncClient, alice: Account, bob: Account) -> Busy:
    own = str((await create_group(http, alice, visibility="private"))["id"])
    joined = await public_group(http, bob, alice)
    sent = [
        await post_message(http, alice, own, "Tom & Jerry <3"),
        await post_message(http, alice, joined, "second"),
        await post_message(http, alice, own, "to delete"),
    ]
    deleted = await http.delete(f"{GROUPS}/{own}/messages/{sent[2]['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    return Busy(alice, own, sent, str(sent[2]["id"]))


async def busy_user(http: httpx.AsyncClient) -> Busy:
    """A user with two sessions, groups, messages, invites, work, a webhook, notifications."""
    alice, bob, carol = await account(http), await account(http), await account(http)
    await _refresh(http, alice)
    assert (await login(http, alice.email, alice.password)).status_code == 200
    busy = await _groups_and_messages(http, alice, bob)
    await invite(http, alice, busy.own_group, carol)
    bobs_private = str((await create_group(http, bob, visibility="private"))["id"])
    await invite(http, bob, bobs_private, alice)
    made = await http.post(
        f"{GROUPS}/{busy.own_group}/assignments", headers=alice.headers, json=assignment_payload()
    )
    assert made.status_code == 201, made.text
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["member.joined"]}
    hooked = await http.post(
        "/api/v1/webhooks", headers=alice.headers, json={**hook, "group_id": busy.own_group}
    )
    assert hooked.status_code == 201, hooked.text
    settings = await http.put(
        "/api/v1/users/me/notification-settings",
        headers=alice.headers,
        json={"email": {"mention": False}},
    )
    assert settings.status_code == 200, settings.text
    forgot = await http.post("/api/v1/auth/password/forgot", json={"email": alice.email})
    assert forgot.status_code == 202, forgot.text
    await _notified(http, alice)
    return busy


async def test_the_export_of_a_busy_user_holds_everything(http: httpx.AsyncClient) -> None:
    """Every kind of data is there, as the schema says, with group and seq, and no secret."""
    busy = await busy_user(http)
    response = await http.get(EXPORT, headers=busy.user.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    document = msgspec.json.decode(response.content, type=AccountExportDocument, strict=True)
    data = document.data
    assert data.format == "studybuddy.account-export" and data.version == 1
    assert str(data.user.id) == busy.user.id and data.user.email == busy.user.email
    families = sorted(data.sessions, key=lambda s: s.refreshes)
    assert [s.refreshes for s in families] == [0, 1]
    assert families[1].last_used_at > families[1].started_at
    assert {m.role for m in data.memberships} == {"owner", "member"}
    held = {(str(m.group_id), m.seq): m for m in data.messages}
    for sent in busy.messages:
        assert held[(str(sent["group_id"]), sent["seq"])].body == sent["body"]
    assert [str(m.id) for m in data.messages if m.deleted_at] == [busy.deleted]
    assert held[(busy.own_group, busy.messages[0]["seq"])].body == "Tom &amp; Jerry &lt;3"
    assert [i.status for i in data.invites_sent] == ["pending"]
    assert [i.invitee_id for i in data.invites_received] == [data.user.id]
    assert len(data.assignments_created) == 1
    assert [str(g.id) for g in data.groups_owned] == [busy.own_group]
    assert [w.url for w in data.webhooks_created] == ["http://127.0.0.1:9/hook"]
    assert {n.kind for n in data.notifications} == {"invite.received"}
    assert data.notification_settings is not None
    assert data.notification_settings.email == {"mention": False}
    assert {t.purpose for t in data.email_tokens} >= {"reset_password"}
    assert not any(secret in response.text for secret in SECRETS)


async def test_a_large_export_is_streamed_in_batches(
    http: httpx.AsyncClient, export_node: RunningServer
) -> None:
    """Rows come a batch at a time and the pieces still join into one valid document."""
    alice = await account(http)
    group = str((await create_group(http, alice))["id"])
    sent = [await post_message(http, alice, group) for _ in range(7)]
    export_node.domain.users.export_batch = 2
    try:
        async with http.stream("GET", EXPORT, headers=alice.headers) as response:
            assert "content-length" not in response.headers
            pieces = [piece async for piece in response.aiter_raw()]
    finally:
        export_node.domain.users.export_batch = 500
    document = msgspec.json.decode(b"".join(pieces), type=AccountExportDocument, strict=True)
    assert [m.seq for m in document.data.messages] == [m["seq"] for m in sent]
    assert document.data.notification_settings is None
    assert document.data.invites_sent == []
    assert str(document.data.groups_owned[0].id) == group


async def test_export_needs_a_signed_in_user(http: httpx.AsyncClient) -> None:
    """Anonymous: 401 with the error envelope."""
    response = await http.get(EXPORT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def _stalled_export(base_url: str, who: Account) -> socket.socket:
    """Ask for the export with a tiny receive window, read the head, and stop reading."""
    host, port = base_url.removeprefix("http://").split(":")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(raw, (host, int(port)))
    request = f"GET {EXPORT} HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {who.token}\r\n\r\n"
    await loop.sock_sendall(raw, request.encode())
    assert (await loop.sock_recv(raw, 1024)).startswith(b"HTTP/1.1 200")
    return raw


async def test_exports_are_one_per_user_and_a_stalled_one_is_given_up(
    http: httpx.AsyncClient, export_node: RunningServer
) -> None:
    """A second export while the first runs is 429; a reader who stops is cut off in time.

    Twenty exports left unread held the whole database pool (every other request waited
    5 s, or got 503): each held a snapshot for as long as its reader liked.
    """
    alice = await account(http)
    group = str((await create_group(http, alice))["id"])
    db = export_node.node.resources.db
    await many_messages(db, group, alice.id, 1500, lambda _seq: "x" * 4000)  # megabytes
    stalled = await _stalled_export(export_node.base_url, alice)
    try:
        second = await http.get(EXPORT, headers=alice.headers)
        assert second.status_code == 429, second.text[:200]
        assert second.json()["error"]["code"] == "RATE_LIMITED"
        assert int(second.headers["Retry-After"]) > 0
        for _ in range(50):  # given up after about 1 s: the slot is free again
            async with http.stream("GET", EXPORT, headers=alice.headers) as again:
                if again.status_code == 200:
                    body = b"".join([piece async for piece in again.aiter_raw()])
                    break
            await asyncio.sleep(0.2)
        document = msgspec.json.decode(body, type=AccountExportDocument, strict=True)
        assert len(document.data.messages) == 1500
    finally:
        stalled.close()
