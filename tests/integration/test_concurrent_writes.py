"""Requests that race for the same row: one wins, the others get 409, on both databases.

PostgreSQL (the ``redis`` node) serialises them with row locks; SQLite (the embedded
``memory`` node) ignores ``FOR UPDATE`` and needs the database's write lock instead.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.factories.groups import GROUPS, create_group, invite
from tests.factories.users import Account, account
from tests.integration.conftest import Realtime

BOTH_DATABASES = pytest.mark.parametrize("rt", ["redis", "memory"], indirect=True)


async def _statuses(requests: list[asyncio.Future[httpx.Response]]) -> list[int]:
    return sorted(response.status_code for response in await asyncio.gather(*requests))


@BOTH_DATABASES
async def test_joins_at_once_fill_a_group_to_its_cap_and_no_further(rt: Realtime) -> None:
    """Six joins at once for two free places: two 200s, four 409s, and the count agrees."""
    owner = await account(rt.http)
    group = await create_group(rt.http, owner, visibility="public", max_members=3)
    joiners = [await account(rt.http) for _ in range(6)]
    join = f"{GROUPS}/{group['id']}/join"
    codes = await _statuses(
        [asyncio.ensure_future(rt.http.post(join, headers=who.headers)) for who in joiners]
    )
    assert codes == [200] * 2 + [409] * 4
    shown = (await rt.http.get(f"{GROUPS}/{group['id']}", headers=owner.headers)).json()["data"]
    members = await rt.http.get(f"{GROUPS}/{group['id']}/members", headers=owner.headers)
    assert shown["member_count"] == members.json()["pagination"]["total"] == 3


@BOTH_DATABASES
async def test_one_user_joining_five_times_at_once_is_one_member(rt: Realtime) -> None:
    """The same join five times at once: one 200, four 409 (never a 500)."""
    owner, joiner = await account(rt.http), await account(rt.http)
    group = await create_group(rt.http, owner, visibility="public")
    join = f"{GROUPS}/{group['id']}/join"
    codes = await _statuses(
        [asyncio.ensure_future(rt.http.post(join, headers=joiner.headers)) for _ in range(5)]
    )
    assert codes == [200] + [409] * 4


@BOTH_DATABASES
async def test_one_invite_accepted_five_times_at_once_is_one_member(rt: Realtime) -> None:
    """Accepting one invite five times at once: one 200, four 409."""
    owner, invitee = await account(rt.http), await account(rt.http)
    group = await create_group(rt.http, owner, visibility="private")
    sent = await invite(rt.http, owner, group["id"], invitee)
    accept = f"/api/v1/invites/{sent['id']}/accept"
    codes = await _statuses(
        [asyncio.ensure_future(rt.http.post(accept, headers=invitee.headers)) for _ in range(5)]
    )
    assert codes == [200] + [409] * 4


@BOTH_DATABASES
async def test_inviting_one_user_five_times_at_once_is_one_invite(rt: Realtime) -> None:
    """Five invites of one user at once: one 201, four 409, one pending invite."""
    owner, invitee = await account(rt.http), await account(rt.http)
    group = await create_group(rt.http, owner, visibility="private")
    url, body = f"{GROUPS}/{group['id']}/invites", {"user_id": invitee.id}
    codes = await _statuses(
        [
            asyncio.ensure_future(rt.http.post(url, headers=owner.headers, json=body))
            for _ in range(5)
        ]
    )
    assert codes == [201] + [409] * 4
    pending = await _pending_invites(rt.http, invitee)
    assert len(pending) == 1


async def _pending_invites(http: httpx.AsyncClient, invitee: Account) -> list[object]:
    listed = await http.get("/api/v1/invites", headers=invitee.headers, params={"page_size": 100})
    return [row for row in listed.json()["data"] if row["status"] == "pending"]
