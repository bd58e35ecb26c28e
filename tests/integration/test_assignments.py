"""Assignments over HTTP: create, list with due-date filters, read, change, soft delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories.groups import GROUPS, add_member, assignment_payload, create_group, set_role
from tests.factories.users import Account, account


def zulu(moment: datetime) -> str:
    """ISO-8601 UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def error_code(response: httpx.Response) -> str:
    """The contract error code of an error response."""
    code: str = response.json()["error"]["code"]
    return code


async def team(client: httpx.AsyncClient) -> tuple[str, Account, Account, Account]:
    """A private group with an owner, an admin and a member; returns its assignments URL."""
    owner, admin, member = [await account(client) for _ in range(3)]
    group = await create_group(client, owner, visibility="private")
    for user in (admin, member):
        await add_member(client, owner, group["id"], user)
    await set_role(client, owner, group["id"], admin, "admin")
    return f"{GROUPS}/{group['id']}/assignments", owner, admin, member


async def make(
    client: httpx.AsyncClient, url: str, who: Account, **overrides: Any
) -> dict[str, Any]:
    """Create an assignment; assert 201 and return it."""
    response = await client.post(url, headers=who.headers, json=assignment_payload(**overrides))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def listed(
    client: httpx.AsyncClient, url: str, who: Account, **params: str
) -> dict[str, Any]:
    """GET the assignments list; assert 200 and return the body."""
    response = await client.get(url, headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_owner_and_admin_create_assignments_members_cannot(
    client: httpx.AsyncClient,
) -> None:
    """POST by the owner and by an admin is 201 with the assignment; by a member 403."""
    url, owner, admin, member = await team(client)
    payload = assignment_payload()
    response = await client.post(url, headers=owner.headers, json=payload)
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "Created"
    item = response.json()["data"]
    assert set(item) == {
        "id",
        "group_id",
        "title",
        "description",
        "due_at",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert item["title"] == payload["title"] and item["description"] == payload["description"]
    assert datetime.fromisoformat(item["due_at"]) == datetime.fromisoformat(payload["due_at"])
    assert item["created_by"] == owner.id and url.endswith(f"{item['group_id']}/assignments")
    by_admin = await make(client, url, admin)
    assert by_admin["created_by"] == admin.id
    by_member = await client.post(url, headers=member.headers, json=assignment_payload())
    assert by_member.status_code == 403 and error_code(by_member) == "FORBIDDEN"
    everything = await listed(client, url, member)
    assert {a["id"] for a in everything["data"]} == {item["id"], by_admin["id"]}


async def test_assignment_fields_are_validated(client: httpx.AsyncClient) -> None:
    """Title of 0 or 201 characters, blank titles and due_at without a zone are 400."""
    url, owner, _, _ = await team(client)
    cases = [
        ("title", {"title": ""}),
        ("title", {"title": "t" * 201}),
        ("title", {"title": "   "}),
        ("due_at", {"due_at": "2030-01-01T10:00:00"}),
        ("due_at", {"due_at": "next friday"}),
        ("due_at", {"due_at": None}),
        ("description", {"description": "d" * 5001}),
        ("owner", {"owner": "me"}),
    ]
    for field, overrides in cases:
        response = await client.post(
            url, headers=owner.headers, json=assignment_payload(**overrides)
        )
        assert response.status_code == 400, (overrides, response.text)
        assert error_code(response) == "VALIDATION_ERROR"
        fields = [p["field"] for p in response.json()["error"]["details"]["fields"]]
        assert field in fields, (overrides, fields)
    missing = await client.post(url, headers=owner.headers, json={"title": "No due date"})
    assert missing.status_code == 400
    assert (await listed(client, url, owner))["data"] == []


async def test_assignment_text_limits_and_escaping(client: httpx.AsyncClient) -> None:
    """A 200-character title is fine; HTML is escaped; due_at with an offset is served as UTC."""
    url, owner, _, _ = await team(client)
    longest = await make(client, url, owner, title="t" * 200)
    assert longest["title"] == "t" * 200
    escaped = await make(client, url, owner, title="<b>Read</b> ch. 4", description="a & b\x00")
    assert escaped["title"] == "&lt;b&gt;Read&lt;/b&gt; ch. 4"
    assert escaped["description"] == "a &amp; b"
    offset = await make(client, url, owner, due_at="2030-06-01T12:00:00+02:00")
    stored = (await client.get(f"{url}/{offset['id']}", headers=owner.headers)).json()["data"]
    assert stored["due_at"] == "2030-06-01T10:00:00Z"
    assert offset["due_at"] == stored["due_at"]  # the 201 body is UTC too (contract section 1)
    patched = await client.patch(
        f"{url}/{offset['id']}", headers=owner.headers, json={"due_at": "2030-06-02T01:00:00-05:00"}
    )
    assert patched.json()["data"]["due_at"] == "2030-06-02T06:00:00Z"


async def test_title_of_200_escapable_characters_is_stored(client: httpx.AsyncClient) -> None:
    """200 '&' characters are a valid title (limits count before escaping) and come back escaped."""
    url, owner, _, _ = await team(client)
    response = await client.post(
        url, headers=owner.headers, json=assignment_payload(title="&" * 200)
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["title"] == "&amp;" * 200


async def test_list_filters_by_due_date_and_sorts(client: httpx.AsyncClient) -> None:
    """filter[due_after] is >= and filter[due_before] is <; default order is by due date."""
    url, owner, _, member = await team(client)
    base = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
    late = await make(client, url, owner, title="Charlie", due_at=zulu(base + timedelta(days=2)))
    early = await make(client, url, owner, title="Alpha", due_at=zulu(base))
    middle = await make(client, url, owner, title="Bravo", due_at=zulu(base + timedelta(days=1)))
    everything = await listed(client, url, member)
    assert [a["id"] for a in everything["data"]] == [early["id"], middle["id"], late["id"]]
    assert everything["pagination"] == {"page": 1, "page_size": 20, "total": 3, "total_pages": 1}
    edge = zulu(base + timedelta(days=1))
    after = await listed(client, url, member, **{"filter[due_after]": edge})
    assert [a["id"] for a in after["data"]] == [middle["id"], late["id"]]
    before = await listed(client, url, member, **{"filter[due_before]": edge})
    assert [a["id"] for a in before["data"]] == [early["id"]]
    window = await listed(
        client,
        url,
        member,
        **{"filter[due_after]": "2031-03-10", "filter[due_before]": "2031-03-12"},
    )
    assert [a["id"] for a in window["data"]] == [early["id"], middle["id"]]
    newest_due = await listed(client, url, member, sort="-due_at")
    assert [a["id"] for a in newest_due["data"]] == [late["id"], middle["id"], early["id"]]
    by_title = await listed(client, url, member, sort="title")
    assert [a["id"] for a in by_title["data"]] == [early["id"], middle["id"], late["id"]]
    by_created = await listed(client, url, member, sort="-created_at")
    assert [a["id"] for a in by_created["data"]] == [middle["id"], early["id"], late["id"]]
    found = await listed(client, url, member, search="BRAV")
    assert [a["id"] for a in found["data"]] == [middle["id"]]
    paged = await listed(client, url, member, page_size="2", page="2")
    assert [a["id"] for a in paged["data"]] == [late["id"]]
    past = await listed(client, url, member, page="9")
    assert past["data"] == [] and past["pagination"]["total"] == 3
    for params in (
        {"filter[due_after]": "soon"},
        {"filter[due_before]": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC: was a 500
        {"filter[owner]": "me"},
        {"sort": "priority"},
        {"page_size": "0"},
    ):
        response = await client.get(url, headers=member.headers, params=params)
        assert response.status_code == 400, params


async def test_get_one_assignment(client: httpx.AsyncClient) -> None:
    """A member reads one assignment; unknown ids and another group's ids are 404."""
    url, owner, _, member = await team(client)
    item = await make(client, url, owner)
    response = await client.get(f"{url}/{item['id']}", headers=member.headers)
    assert response.status_code == 200 and response.json()["data"] == item
    assert (await client.get(f"{url}/{uuid.uuid4()}", headers=member.headers)).status_code == 404
    other_url, other_owner, _, _ = await team(client)
    foreign = await client.get(f"{other_url}/{item['id']}", headers=other_owner.headers)
    assert foreign.status_code == 404 and error_code(foreign) == "NOT_FOUND"
    outsider = await client.get(f"{url}/{item['id']}", headers=other_owner.headers)
    assert outsider.status_code == 404


async def test_update_assignment(client: httpx.AsyncClient) -> None:
    """PATCH by owner or admin changes the given fields only; a member gets 403."""
    url, owner, admin, member = await team(client)
    item = await make(client, url, owner)
    one = f"{url}/{item['id']}"
    new_due = "2032-01-15T09:30:00Z"
    changed = await client.patch(
        one, headers=admin.headers, json={"title": "New <title>", "due_at": new_due}
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["title"] == "New &lt;title&gt;" and data["description"] == item["description"]
    assert datetime.fromisoformat(data["due_at"]) == datetime.fromisoformat(new_due)
    assert data["updated_at"] > item["updated_at"] and data["created_at"] == item["created_at"]
    assert data["created_by"] == owner.id
    by_member = await client.patch(one, headers=member.headers, json={"title": "Mine now"})
    assert by_member.status_code == 403
    bad = await client.patch(one, headers=owner.headers, json={"due_at": "2032-01-15T09:30:00"})
    assert bad.status_code == 400
    assert (await client.get(one, headers=member.headers)).json()["data"]["title"] == data["title"]
    missing = await client.patch(
        f"{url}/{uuid.uuid4()}", headers=owner.headers, json={"title": "x"}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("field", ["title", "due_at", "description"])
async def test_update_assignment_refuses_null(client: httpx.AsyncClient, field: str) -> None:
    """``null`` is 400 naming the field, and nothing changes."""
    url, owner, _, _ = await team(client)
    item = await make(client, url, owner)
    refused = await client.patch(f"{url}/{item['id']}", headers=owner.headers, json={field: None})
    assert refused.status_code == 400
    assert [p["field"] for p in refused.json()["error"]["details"]["fields"]] == [field]
    shown = await client.get(f"{url}/{item['id']}", headers=owner.headers)
    assert shown.json()["data"][field] == item[field]


async def test_delete_assignment_is_soft_and_final(client: httpx.AsyncClient) -> None:
    """DELETE by a member is 403; by an admin 204; afterwards it is 404 and out of the list."""
    url, owner, admin, member = await team(client)
    keep, drop = await make(client, url, owner), await make(client, url, owner)
    one = f"{url}/{drop['id']}"
    assert (await client.delete(one, headers=member.headers)).status_code == 403
    deleted = await client.delete(one, headers=admin.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(one, headers=owner.headers)).status_code == 404
    assert (
        await client.patch(one, headers=owner.headers, json={"title": "back"})
    ).status_code == 404
    assert (await client.delete(one, headers=owner.headers)).status_code == 404
    remaining = await listed(client, url, member)
    assert [a["id"] for a in remaining["data"]] == [keep["id"]]
    assert remaining["pagination"]["total"] == 1


async def test_outsiders_of_a_public_group_cannot_see_assignments(
    client: httpx.AsyncClient,
) -> None:
    """A public group's assignments are 403 for non-members, read or write."""
    owner, outsider = await account(client), await account(client)
    group = await create_group(client, owner, visibility="public")
    url = f"{GROUPS}/{group['id']}/assignments"
    item = await make(client, url, owner)
    for method, path, body in (
        ("GET", url, None),
        ("GET", f"{url}/{item['id']}", None),
        ("POST", url, assignment_payload()),
        ("PATCH", f"{url}/{item['id']}", {"title": "x"}),
        ("DELETE", f"{url}/{item['id']}", None),
    ):
        response = await client.request(method, path, headers=outsider.headers, json=body)
        assert response.status_code == 403, (method, path, response.text)
