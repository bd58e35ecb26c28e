"""Invites over HTTP: invite, list, accept, decline, expiry."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from server.settings import Settings
from tests.factories.groups import GROUPS, add_member, create_group, invite, run_sql, set_role
from tests.factories.users import Account, account

INVITES = "/api/v1/invites"


async def send(
    client: httpx.AsyncClient, inviter: Account, group_id: str, user_id: str
) -> httpx.Response:
    """POST /study-groups/{id}/invites."""
    return await client.post(
        f"{GROUPS}/{group_id}/invites", headers=inviter.headers, json={"user_id": user_id}
    )


async def answer(
    client: httpx.AsyncClient, user: Account, invite_id: str, verb: str
) -> httpx.Response:
    """POST /invites/{id}/accept or /decline."""
    return await client.post(f"{INVITES}/{invite_id}/{verb}", headers=user.headers)


async def my_invites(client: httpx.AsyncClient, user: Account, **params: str) -> dict[str, Any]:
    """GET /invites; assert 200 and return the body."""
    response = await client.get(INVITES, headers=user.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_code(response: httpx.Response) -> str:
    """The contract error code of an error response."""
    code: str = response.json()["error"]["code"]
    return code


async def test_invite_is_created_pending_with_a_seven_day_expiry(client: httpx.AsyncClient) -> None:
    """The owner invites a user: 201 with a pending invite that expires 7 days after creation."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    response = await send(client, alice, group["id"], bob.id)
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "Created"
    sent = response.json()["data"]
    assert set(sent) == {
        "id",
        "group_id",
        "inviter_id",
        "invitee_id",
        "status",
        "expires_at",
        "created_at",
        "group_name",
    }
    assert sent["group_id"] == group["id"] and sent["status"] == "pending"
    assert sent["group_name"] == group["name"]  # the invitee may not read the group itself
    listed = (await client.get("/api/v1/invites", headers=bob.headers)).json()["data"]
    assert [i["group_name"] for i in listed if i["id"] == sent["id"]] == [group["name"]]
    assert sent["inviter_id"] == alice.id and sent["invitee_id"] == bob.id
    created = datetime.fromisoformat(sent["created_at"])
    expires = datetime.fromisoformat(sent["expires_at"])
    assert expires - created == timedelta(days=7)
    assert abs((created - datetime.now(created.tzinfo)).total_seconds()) < 60


async def test_admins_invite_members_cannot(client: httpx.AsyncClient) -> None:
    """An admin's invite is 201; a plain member's is 403."""
    alice, bob, carol, dave = [await account(client) for _ in range(4)]
    group = await create_group(client, alice, visibility="private")
    await add_member(client, alice, group["id"], bob)
    await add_member(client, alice, group["id"], carol)
    await set_role(client, alice, group["id"], bob, "admin")
    by_member = await send(client, carol, group["id"], dave.id)
    assert by_member.status_code == 403 and error_code(by_member) == "FORBIDDEN"
    by_admin = await send(client, bob, group["id"], dave.id)
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["data"]["inviter_id"] == bob.id


async def test_invite_conflicts_and_unknowns(client: httpx.AsyncClient) -> None:
    """Inviting a member or a user with a pending invite is 409; an unknown user 404."""
    alice, bob, carol, eve = [await account(client) for _ in range(4)]
    group = await create_group(client, alice, visibility="private")
    await add_member(client, alice, group["id"], bob)
    member = await send(client, alice, group["id"], bob.id)
    assert member.status_code == 409 and error_code(member) == "CONFLICT"
    owner = await send(client, alice, group["id"], alice.id)
    assert owner.status_code == 409
    assert (await send(client, alice, group["id"], carol.id)).status_code == 201
    duplicate = await send(client, alice, group["id"], carol.id)
    assert duplicate.status_code == 409 and error_code(duplicate) == "CONFLICT"
    unknown = await send(client, alice, group["id"], str(uuid.uuid4()))
    assert unknown.status_code == 404 and error_code(unknown) == "NOT_FOUND"
    outsider = await send(client, eve, group["id"], carol.id)
    assert outsider.status_code == 404
    no_group = await send(client, alice, str(uuid.uuid4()), carol.id)
    assert no_group.status_code == 404
    for body in ({"user_id": "not-a-uuid"}, {}, {"user_id": carol.id, "role": "admin"}):
        bad = await client.post(f"{GROUPS}/{group['id']}/invites", headers=alice.headers, json=body)
        assert bad.status_code == 400 and error_code(bad) == "VALIDATION_ERROR", body


async def test_invite_list_shows_only_the_callers_invites(client: httpx.AsyncClient) -> None:
    """GET /invites lists invites addressed to the caller, filterable by status."""
    alice, bob, carol = [await account(client) for _ in range(3)]
    first = await create_group(client, alice, visibility="private")
    second = await create_group(client, alice, visibility="public")
    to_bob_1 = await invite(client, alice, first["id"], bob)
    to_bob_2 = await invite(client, alice, second["id"], bob)
    to_carol = await invite(client, alice, first["id"], carol)
    bobs = await my_invites(client, bob)
    assert [i["id"] for i in bobs["data"]] == [to_bob_2["id"], to_bob_1["id"]]  # newest first
    assert bobs["pagination"]["total"] == 2
    assert [i["id"] for i in (await my_invites(client, carol))["data"]] == [to_carol["id"]]
    assert (await my_invites(client, alice))["data"] == []
    assert (await answer(client, bob, to_bob_1["id"], "decline")).status_code == 200
    pending = await my_invites(client, bob, **{"filter[status]": "pending"})
    assert [i["id"] for i in pending["data"]] == [to_bob_2["id"]]
    declined = await my_invites(client, bob, **{"filter[status]": "DECLINED"})
    assert [i["id"] for i in declined["data"]] == [to_bob_1["id"]]
    assert declined["data"][0]["status"] == "declined"
    oldest = await my_invites(client, bob, sort="created_at", page_size="1")
    assert [i["id"] for i in oldest["data"]] == [to_bob_1["id"]]
    assert oldest["pagination"] == {"page": 1, "page_size": 1, "total": 2, "total_pages": 2}
    for params in ({"filter[status]": "bogus"}, {"filter[group]": "x"}, {"sort": "status"}):
        response = await client.get(INVITES, headers=bob.headers, params=params)
        assert response.status_code == 400, params


async def test_accept_makes_a_member_who_can_read_messages(client: httpx.AsyncClient) -> None:
    """Accepting is 200 with the membership; the user then reads the private group's messages."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    messages = f"{GROUPS}/{group['id']}/messages"
    assert (await client.get(messages, headers=bob.headers)).status_code == 404
    sent = await invite(client, alice, group["id"], bob)
    accepted = await answer(client, bob, sent["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    member = accepted.json()["data"]
    assert member["user_id"] == bob.id and member["role"] == "member"
    assert member["username"] == bob.username
    assert (await client.get(messages, headers=bob.headers)).status_code == 200
    seen = (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).json()["data"]
    assert seen["member_count"] == 2 and seen["role"] == "member"
    listed = (await my_invites(client, bob))["data"]
    assert [(i["id"], i["status"]) for i in listed] == [(sent["id"], "accepted")]
    twice = await answer(client, bob, sent["id"], "accept")
    assert twice.status_code == 409 and error_code(twice) == "CONFLICT"
    assert (await answer(client, bob, sent["id"], "decline")).status_code == 409


async def test_joining_by_any_route_settles_the_invite_so_a_kick_keeps_them_out(
    client: httpx.AsyncClient,
) -> None:
    """Invited, then joined a public group directly: the invite reads accepted, not pending.

    Pending, it let a member kicked from the group (since made private) back in, and refused
    the owner's next invite as a duplicate.
    """
    owner, bob = await account(client), await account(client)
    group = await create_group(client, owner, visibility="public")
    sent = await invite(client, owner, group["id"], bob)
    joined = await client.post(f"{GROUPS}/{group['id']}/join", headers=bob.headers)
    assert joined.status_code == 200, joined.text
    assert [i["status"] for i in (await my_invites(client, bob))["data"]] == ["accepted"]
    made_private = await client.patch(
        f"{GROUPS}/{group['id']}", headers=owner.headers, json={"visibility": "private"}
    )
    assert made_private.status_code == 200, made_private.text
    kicked = await client.delete(f"{GROUPS}/{group['id']}/members/{bob.id}", headers=owner.headers)
    assert kicked.status_code == 204, kicked.text
    back = await answer(client, bob, sent["id"], "accept")
    assert back.status_code == 409 and error_code(back) == "CONFLICT", back.text
    assert (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).status_code == 404
    assert (await send(client, owner, group["id"], bob.id)).status_code == 201  # invited anew


async def test_decline_leaves_the_user_outside(client: httpx.AsyncClient) -> None:
    """Declining is 200 with the declined invite; the group stays hidden; a new invite is fine."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    sent = await invite(client, alice, group["id"], bob)
    declined = await answer(client, bob, sent["id"], "decline")
    assert declined.status_code == 200, declined.text
    assert declined.json()["data"]["status"] == "declined"
    assert declined.json()["data"]["id"] == sent["id"]
    assert (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).status_code == 404
    assert (await answer(client, bob, sent["id"], "accept")).status_code == 409
    assert (await send(client, alice, group["id"], bob.id)).status_code == 201


async def test_someone_elses_invite_is_404(client: httpx.AsyncClient) -> None:
    """Accepting or declining another user's invite, or an unknown one, is 404."""
    alice, bob, carol = [await account(client) for _ in range(3)]
    group = await create_group(client, alice, visibility="private")
    sent = await invite(client, alice, group["id"], bob)
    for user in (carol, alice):
        for verb in ("accept", "decline"):
            response = await answer(client, user, sent["id"], verb)
            assert response.status_code == 404 and error_code(response) == "NOT_FOUND"
    assert (await answer(client, bob, str(uuid.uuid4()), "accept")).status_code == 404
    assert (await answer(client, bob, "not-a-uuid", "accept")).status_code == 404
    assert (await answer(client, bob, sent["id"], "accept")).status_code == 200


async def test_expired_invite_cannot_be_answered(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """An invite past its expiry reads as expired, answering it is 409, and it can be redone."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    sent = await invite(client, alice, group["id"], bob)
    status = await run_sql(
        settings.database_url,
        "UPDATE invites SET expires_at = now() - interval '1 day' WHERE id = $1",
        uuid.UUID(sent["id"]),
    )
    assert status == "UPDATE 1"
    accepted = await answer(client, bob, sent["id"], "accept")
    assert accepted.status_code == 409 and error_code(accepted) == "CONFLICT"
    assert (await answer(client, bob, sent["id"], "decline")).status_code == 409
    assert (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).status_code == 404
    listed = (await my_invites(client, bob))["data"]
    assert [(i["id"], i["status"]) for i in listed] == [(sent["id"], "expired")]
    expired = await my_invites(client, bob, **{"filter[status]": "expired"})
    assert [i["id"] for i in expired["data"]] == [sent["id"]]
    assert (await my_invites(client, bob, **{"filter[status]": "pending"}))["data"] == []
    again = await send(client, alice, group["id"], bob.id)
    assert again.status_code == 201
    assert (await answer(client, bob, again.json()["data"]["id"], "accept")).status_code == 200


async def test_accepting_into_a_full_group_is_409(client: httpx.AsyncClient) -> None:
    """An invite accepted after the group filled up is a 409; the user stays outside."""
    alice, bob, carol = [await account(client) for _ in range(3)]
    group = await create_group(client, alice, visibility="public", max_members=2)
    sent = await invite(client, alice, group["id"], bob)
    assert (
        await client.post(f"{GROUPS}/{group['id']}/join", headers=carol.headers)
    ).status_code == 200
    full = await answer(client, bob, sent["id"], "accept")
    assert full.status_code == 409 and error_code(full) == "CONFLICT"
    seen = (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).json()["data"]
    assert seen["role"] is None and seen["member_count"] == 2


async def test_invites_need_authentication(client: httpx.AsyncClient) -> None:
    """GET /invites and answering without a token are 401."""
    assert (await client.get(INVITES)).status_code == 401
    assert (await client.post(f"{INVITES}/{uuid.uuid4()}/accept")).status_code == 401
