"""Study groups over HTTP: create, list, read, change, delete, join, leave, kick and roles."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from tests.factories.groups import (
    GROUPS,
    add_member,
    create_group,
    group_payload,
    invite,
    post_message,
    set_role,
)
from tests.factories.users import Account, account


def tag() -> str:
    """A subject no other test uses, to fence a test's groups off in shared lists."""
    return f"subj-{uuid.uuid4().hex[:10]}"


async def listing(client: httpx.AsyncClient, who: Account, **params: str) -> dict[str, Any]:
    """GET /study-groups with ``params``; assert 200 and return the whole body."""
    response = await client.get(GROUPS, headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    """The ids of a list response, in order."""
    return [item["id"] for item in body["data"]]


def error_code(response: httpx.Response) -> str:
    """The contract error code of an error response."""
    code: str = response.json()["error"]["code"]
    return code


def bad_fields(response: httpx.Response) -> list[str]:
    """The field names listed in a 400's details."""
    assert response.status_code == 400, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    return [problem["field"] for problem in response.json()["error"]["details"]["fields"]]


async def join(client: httpx.AsyncClient, user: Account, group_id: str) -> httpx.Response:
    """POST /study-groups/{id}/join."""
    return await client.post(f"{GROUPS}/{group_id}/join", headers=user.headers)


# --- create -------------------------------------------------------------------------------


async def test_create_group_makes_the_caller_its_owner(client: httpx.AsyncClient) -> None:
    """POST /study-groups answers 201 with the group; the caller is its owner and only member."""
    alice = await account(client)
    payload = group_payload(visibility="private", max_members=10)
    response = await client.post(GROUPS, headers=alice.headers, json=payload)
    assert response.status_code == 201
    assert response.json()["message"] == "Created"
    group = response.json()["data"]
    assert set(group) == {
        "id",
        "name",
        "description",
        "subject",
        "visibility",
        "max_members",
        "member_count",
        "owner_id",
        "role",
        "created_at",
        "updated_at",
    }
    assert group["name"] == payload["name"] and group["subject"] == payload["subject"]
    assert group["visibility"] == "private" and group["max_members"] == 10
    assert group["member_count"] == 1 and group["role"] == "owner"
    assert group["owner_id"] == alice.id
    assert group["created_at"].endswith("Z")
    uuid.UUID(group["id"])
    members = await client.get(f"{GROUPS}/{group['id']}/members", headers=alice.headers)
    assert members.status_code == 200
    assert [(m["user_id"], m["role"]) for m in members.json()["data"]] == [(alice.id, "owner")]


async def test_create_group_defaults(client: httpx.AsyncClient) -> None:
    """Only name and visibility are needed; the rest default to empty and no cap."""
    alice = await account(client)
    body = {"name": "Bare group", "visibility": "public"}
    response = await client.post(GROUPS, headers=alice.headers, json=body)
    assert response.status_code == 201, response.text
    group = response.json()["data"]
    assert group["description"] == "" and group["subject"] == ""
    assert group["max_members"] is None and group["member_count"] == 1


async def test_create_group_rejects_bad_fields(client: httpx.AsyncClient) -> None:
    """Name 2 or 101 characters, max_members 1 or 1001, an unknown visibility: 400 each."""
    alice = await account(client)
    cases = {
        "name": [group_payload(name="ab"), group_payload(name="x" * 101)],
        "max_members": [group_payload(max_members=1), group_payload(max_members=1001)],
        "visibility": [group_payload(visibility="secret"), group_payload(visibility=None)],
    }
    for field, payloads in cases.items():
        for payload in payloads:
            response = await client.post(GROUPS, headers=alice.headers, json=payload)
            assert field in bad_fields(response), (payload, response.text)
    unknown = await client.post(GROUPS, headers=alice.headers, json=group_payload(owner="me"))
    assert "owner" in bad_fields(unknown)


async def test_create_group_accepts_the_limits(client: httpx.AsyncClient) -> None:
    """Name of 3 and of 100 characters, max_members 2 and 1000 are all accepted."""
    alice = await account(client)
    for payload in (
        group_payload(name="abc", max_members=2),
        group_payload(name="n" * 100, max_members=1000),
    ):
        response = await client.post(GROUPS, headers=alice.headers, json=payload)
        assert response.status_code == 201, response.text
        assert response.json()["data"]["name"] == payload["name"]
        assert response.json()["data"]["max_members"] == payload["max_members"]


async def test_group_text_is_sanitised_and_escaped(client: httpx.AsyncClient) -> None:
    """<script> in a name is stored and served escaped; control characters are removed."""
    alice = await account(client)
    payload = group_payload(
        name="<script>alert(1)</script> club", description="line\x00 one\nline\ttwo\x07"
    )
    created = await client.post(GROUPS, headers=alice.headers, json=payload)
    assert created.status_code == 201, created.text
    group = created.json()["data"]
    assert group["name"] == "&lt;script&gt;alert(1)&lt;/script&gt; club"
    assert group["description"] == "line one\nline\ttwo"
    fetched = (await client.get(f"{GROUPS}/{group['id']}", headers=alice.headers)).json()["data"]
    assert fetched["name"] == group["name"] and fetched["description"] == group["description"]


async def test_group_name_at_the_limit_of_escapable_characters_is_stored(
    client: httpx.AsyncClient,
) -> None:
    """100 '&' characters are a valid name (limits count before escaping) and come back escaped."""
    alice = await account(client)
    payload = group_payload(name="&" * 100, subject="<" * 100)
    response = await client.post(GROUPS, headers=alice.headers, json=payload)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["name"] == "&amp;" * 100
    assert response.json()["data"]["subject"] == "&lt;" * 100


# --- list ---------------------------------------------------------------------------------


async def test_list_filters_by_visibility_and_subject(client: httpx.AsyncClient) -> None:
    """filter[subject] is exact and case-insensitive; filter[visibility] narrows further."""
    alice, bob = await account(client), await account(client)
    subject = tag()
    public = await create_group(client, alice, subject=subject.upper(), visibility="public")
    private = await create_group(client, alice, subject=subject, visibility="private")
    await create_group(client, bob, subject=subject, visibility="private")  # not alice's
    await create_group(client, alice, subject=subject + "x", visibility="public")  # not exact
    both = await listing(client, alice, **{"filter[subject]": subject, "sort": "created_at"})
    assert ids(both) == [public["id"], private["id"]]
    assert both["pagination"]["total"] == 2
    only_private = await listing(
        client, alice, **{"filter[subject]": subject.upper(), "filter[visibility]": "private"}
    )
    assert ids(only_private) == [private["id"]]
    only_public = await listing(
        client, alice, **{"filter[subject]": subject, "filter[visibility]": "PUBLIC"}
    )
    assert ids(only_public) == [public["id"]]
    assert only_public["data"][0]["role"] == "owner"


async def test_subject_filter_matches_text_that_needed_escaping(client: httpx.AsyncClient) -> None:
    """filter[subject] finds 'R&D <tag>' when given exactly what the client stored."""
    alice = await account(client)
    subject = f"R&D {tag()}"
    group = await create_group(client, alice, subject=subject)
    found = await listing(client, alice, **{"filter[subject]": subject.lower()})
    assert ids(found) == [group["id"]]


async def test_list_filter_member_me(client: httpx.AsyncClient) -> None:
    """filter[member]=me lists only the caller's groups, with their roles."""
    alice, bob = await account(client), await account(client)
    subject = tag()
    own = await create_group(client, alice, subject=subject, visibility="private")
    joined = await create_group(client, bob, subject=subject)
    await create_group(client, bob, subject=subject)  # public, but not alice's
    assert (await join(client, alice, joined["id"])).status_code == 200
    everything = await listing(client, alice, **{"filter[subject]": subject})
    assert everything["pagination"]["total"] == 3
    mine = await listing(
        client, alice, **{"filter[subject]": subject, "filter[member]": "me", "sort": "created_at"}
    )
    assert ids(mine) == [own["id"], joined["id"]]
    assert [g["role"] for g in mine["data"]] == ["owner", "member"]


async def test_list_rejects_unknown_filters_values_and_sorts(client: httpx.AsyncClient) -> None:
    """filter[member]=x, an unknown filter and an unknown sort field are 400s."""
    alice = await account(client)
    cases = [
        ({"filter[member]": "x"}, "filter[member]"),
        ({"filter[owner]": "me"}, "filter[owner]"),
        ({"sort": "popularity"}, "sort"),
        ({"sort": "name,-bogus"}, "sort"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-45"}, "created_before"),
    ]
    for params, field in cases:
        response = await client.get(GROUPS, headers=alice.headers, params=params)
        assert field in bad_fields(response), (params, response.text)


async def test_list_refuses_a_parameter_given_twice(client: httpx.AsyncClient) -> None:
    """filter[visibility]=public&filter[visibility]=private is a 400 naming it, not a guess."""
    alice = await account(client)
    params = [("filter[visibility]", "public"), ("filter[visibility]", "private"), ("page", "1")]
    response = await client.get(GROUPS, headers=alice.headers, params=params)
    assert bad_fields(response) == ["filter[visibility]"]


async def test_list_sorts_by_member_count_name_and_created_at(client: httpx.AsyncClient) -> None:
    """sort=-member_count, sort=name and the default (newest first) order the groups."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    subject = tag()
    bravo = await create_group(client, alice, subject=subject, name=f"Bravo {subject}")
    charlie = await create_group(client, alice, subject=subject, name=f"Charlie {subject}")
    alpha = await create_group(client, alice, subject=subject, name=f"Alpha {subject}")
    for user in (bob, carol):
        assert (await join(client, user, charlie["id"])).status_code == 200
    assert (await join(client, bob, bravo["id"])).status_code == 200
    fence = {"filter[subject]": subject}
    by_count = await listing(client, alice, **fence, sort="-member_count")
    assert ids(by_count) == [charlie["id"], bravo["id"], alpha["id"]]
    assert [g["member_count"] for g in by_count["data"]] == [3, 2, 1]
    by_count_up = await listing(client, alice, **fence, sort="member_count")
    assert ids(by_count_up) == [alpha["id"], bravo["id"], charlie["id"]]
    by_name = await listing(client, alice, **fence, sort="name")
    assert ids(by_name) == [alpha["id"], bravo["id"], charlie["id"]]
    by_name_down = await listing(client, alice, **fence, sort="-name")
    assert ids(by_name_down) == [charlie["id"], bravo["id"], alpha["id"]]
    newest_first = await listing(client, alice, **fence)
    assert ids(newest_first) == [alpha["id"], charlie["id"], bravo["id"]]
    two_keys = await listing(client, alice, **fence, sort="-member_count,name")
    assert ids(two_keys) == ids(by_count)


async def test_list_search_is_a_case_insensitive_substring_of_name_and_description(
    client: httpx.AsyncClient,
) -> None:
    """Search finds the term inside names and descriptions, whatever its case."""
    alice = await account(client)
    word = uuid.uuid4().hex[:12]
    subject = tag()
    in_name = await create_group(client, alice, subject=subject, name=f"About {word}xyz")
    in_text = await create_group(
        client, alice, subject=subject, description=f"We read {word.upper()} weekly"
    )
    await create_group(client, alice, subject=subject)
    found = await listing(client, alice, search=word.upper(), sort="created_at")
    assert ids(found) == [in_name["id"], in_text["id"]]
    none = await listing(client, alice, search=f"{word}-absent")
    assert none["data"] == [] and none["pagination"]["total"] == 0
    wildcard = await listing(client, alice, **{"filter[subject]": subject, "search": "%"})
    assert wildcard["data"] == []


async def test_list_created_range_takes_dates_and_datetimes(client: httpx.AsyncClient) -> None:
    """created_after is >= and created_before is <, each given as a date or a datetime."""
    alice = await account(client)
    subject = tag()
    groups = [await create_group(client, alice, subject=subject) for _ in range(3)]
    first, middle, last = groups
    fence = {"filter[subject]": subject, "sort": "created_at"}
    after = await listing(client, alice, **fence, created_after=middle["created_at"])
    assert ids(after) == [middle["id"], last["id"]]
    before = await listing(client, alice, **fence, created_before=middle["created_at"])
    assert ids(before) == [first["id"]]
    offset = datetime.fromisoformat(middle["created_at"]).isoformat()  # "+00:00" form
    assert ids(await listing(client, alice, **fence, created_after=offset)) == ids(after)
    day = date.fromisoformat(first["created_at"][:10])
    same_day = await listing(client, alice, **fence, created_after=day.isoformat())
    assert ids(same_day) == [g["id"] for g in groups]
    nothing = await listing(client, alice, **fence, created_before=day.isoformat())
    assert nothing["data"] == [] and nothing["pagination"]["total"] == 0
    tomorrow = (date.fromisoformat(last["created_at"][:10]) + timedelta(days=1)).isoformat()
    window = await listing(
        client, alice, **fence, created_after=day.isoformat(), created_before=tomorrow
    )
    assert ids(window) == [g["id"] for g in groups]


async def test_list_pages_and_reports_true_totals(client: httpx.AsyncClient) -> None:
    """Two per page over three groups; a page past the end is 200, empty, with true totals."""
    alice = await account(client)
    subject = tag()
    groups = [await create_group(client, alice, subject=subject) for _ in range(3)]
    fence = {"filter[subject]": subject, "sort": "created_at", "page_size": "2"}
    first = await listing(client, alice, **fence)
    assert ids(first) == [groups[0]["id"], groups[1]["id"]]
    assert first["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    second = await listing(client, alice, **fence, page="2")
    assert ids(second) == [groups[2]["id"]]
    past = await listing(client, alice, **fence, page="3")
    assert past["data"] == []
    assert past["pagination"] == {"page": 3, "page_size": 2, "total": 3, "total_pages": 2}
    default = await listing(client, alice, **{"filter[subject]": subject})
    assert default["pagination"]["page_size"] == 20 and default["pagination"]["page"] == 1


async def test_list_rejects_bad_page_values(client: httpx.AsyncClient) -> None:
    """page=0, page_size=0, page_size=101, page=abc, page_size=-5 are 400, not clamped."""
    alice = await account(client)
    for name, value in (
        ("page", "0"),
        ("page_size", "0"),
        ("page_size", "101"),
        ("page", "abc"),
        ("page_size", "-5"),
        ("page", "1.5"),
    ):
        response = await client.get(GROUPS, headers=alice.headers, params={name: value})
        assert name in bad_fields(response), (name, value)
    ok = await client.get(GROUPS, headers=alice.headers, params={"page_size": "100"})
    assert ok.status_code == 200


async def test_lists_need_authentication(client: httpx.AsyncClient) -> None:
    """Without a token the group endpoints answer 401."""
    assert (await client.get(GROUPS)).status_code == 401
    assert (await client.post(GROUPS, json=group_payload())).status_code == 401


# --- visibility ---------------------------------------------------------------------------


async def test_private_group_does_not_exist_for_outsiders(client: httpx.AsyncClient) -> None:
    """Another user's private group is absent from lists and every endpoint answers 404."""
    alice, bob = await account(client), await account(client)
    subject = tag()
    group = await create_group(client, alice, subject=subject, visibility="private")
    url = f"{GROUPS}/{group['id']}"
    assert (await listing(client, bob, **{"filter[subject]": subject}))["data"] == []
    assert (await listing(client, bob, search=group["name"]))["data"] == []
    requests = [
        ("GET", url, None),
        ("GET", f"{url}/members", None),
        ("GET", f"{url}/messages", None),
        ("GET", f"{url}/assignments", None),
        ("PATCH", url, {"name": "Taken over"}),
        ("DELETE", url, None),
        ("POST", f"{url}/join", None),
        ("POST", f"{url}/messages", {"body": "hi", "client_msg_id": "c1"}),
        ("POST", f"{url}/invites", {"user_id": bob.id}),
        ("POST", f"{url}/assignments", {"title": "x", "due_at": "2030-01-01T00:00:00Z"}),
        ("PUT", f"{url}/read", {"seq": 1}),
        ("DELETE", f"{url}/members/{alice.id}", None),
        ("PATCH", f"{url}/members/{bob.id}", {"role": "owner"}),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, headers=bob.headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert error_code(response) == "NOT_FOUND"
    assert (await client.get(url, headers=alice.headers)).json()["data"]["name"] == group["name"]


async def test_unknown_group_ids_are_404(client: httpx.AsyncClient) -> None:
    """A random UUID and a non-UUID id are both 404."""
    alice = await account(client)
    for path in (f"{GROUPS}/{uuid.uuid4()}", f"{GROUPS}/not-a-uuid"):
        response = await client.get(path, headers=alice.headers)
        assert response.status_code == 404


async def test_public_group_is_readable_but_closed_to_outsiders(client: httpx.AsyncClient) -> None:
    """Outsiders see a public group and its members; messages and assignments are 403."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="public")
    url = f"{GROUPS}/{group['id']}"
    seen = await client.get(url, headers=bob.headers)
    assert seen.status_code == 200
    assert seen.json()["data"]["role"] is None and seen.json()["data"]["member_count"] == 1
    members = await client.get(f"{url}/members", headers=bob.headers)
    assert members.status_code == 200
    assert [m["user_id"] for m in members.json()["data"]] == [alice.id]
    forbidden = [
        ("GET", f"{url}/messages", None),
        ("GET", f"{url}/assignments", None),
        ("POST", f"{url}/messages", {"body": "hi", "client_msg_id": "c1"}),
        ("POST", f"{url}/assignments", {"title": "x", "due_at": "2030-01-01T00:00:00Z"}),
        ("PATCH", url, {"name": "Taken over"}),
        ("DELETE", url, None),
        ("POST", f"{url}/invites", {"user_id": bob.id}),
        ("PATCH", f"{url}/members/{bob.id}", {"role": "admin"}),
    ]
    for method, path, body in forbidden:
        response = await client.request(method, path, headers=bob.headers, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert error_code(response) == "FORBIDDEN"


async def test_soft_deleted_group_is_gone_everywhere(
    client: httpx.AsyncClient,
) -> None:
    """After DELETE, every endpoint answers 404 and no list, invite or unread count shows it."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    subject = tag()
    group = await create_group(client, alice, subject=subject, visibility="public")
    await add_member(client, alice, group["id"], bob)
    await post_message(client, bob, group["id"])
    pending = await invite(client, alice, group["id"], carol)
    url = f"{GROUPS}/{group['id']}"
    deleted = await client.delete(url, headers=alice.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    for who in (alice, bob, carol):
        assert (await listing(client, who, **{"filter[subject]": subject}))["data"] == []
        for path in (url, f"{url}/members", f"{url}/messages", f"{url}/assignments"):
            response = await client.get(path, headers=who.headers)
            assert response.status_code == 404, (path, response.text)
    for method, path, body in [
        ("PATCH", url, {"name": "Back again"}),
        ("DELETE", url, None),
        ("POST", f"{url}/messages", {"body": "anyone?", "client_msg_id": "late"}),
        ("PUT", f"{url}/read", {"seq": 1}),
        ("DELETE", f"{url}/members/{bob.id}", None),
    ]:
        response = await client.request(method, path, headers=alice.headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await join(client, carol, group["id"])).status_code == 404
    unread = (await client.get("/api/v1/users/me/unread", headers=bob.headers)).json()["data"]
    assert group["id"] not in [row["group_id"] for row in unread]
    invites = (await client.get("/api/v1/invites", headers=carol.headers)).json()
    assert pending["id"] not in [i["id"] for i in invites["data"]]
    accept = await client.post(f"/api/v1/invites/{pending['id']}/accept", headers=carol.headers)
    assert accept.status_code == 404


# --- update and delete --------------------------------------------------------------------


async def test_owner_and_admin_update_a_group_members_cannot(client: httpx.AsyncClient) -> None:
    """PATCH by the owner and by an admin is 200; by a plain member 403."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    group = await create_group(client, alice)
    url = f"{GROUPS}/{group['id']}"
    await add_member(client, alice, group["id"], bob)
    await add_member(client, alice, group["id"], carol)
    await set_role(client, alice, group["id"], bob, "admin")
    by_owner = await client.patch(
        url, headers=alice.headers, json={"name": "Renamed <b>", "visibility": "private"}
    )
    assert by_owner.status_code == 200, by_owner.text
    renamed = by_owner.json()["data"]
    assert renamed["name"] == "Renamed &lt;b&gt;" and renamed["visibility"] == "private"
    assert renamed["description"] == group["description"] and renamed["role"] == "owner"
    assert renamed["updated_at"] >= group["updated_at"]
    by_admin = await client.patch(url, headers=bob.headers, json={"subject": "Physics"})
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json()["data"]["subject"] == "Physics"
    assert by_admin.json()["data"]["name"] == "Renamed &lt;b&gt;"
    by_member = await client.patch(url, headers=carol.headers, json={"subject": "Chemistry"})
    assert by_member.status_code == 403 and error_code(by_member) == "FORBIDDEN"
    current = (await client.get(url, headers=carol.headers)).json()["data"]
    assert current["subject"] == "Physics" and current["role"] == "member"


async def test_update_group_validates_and_guards_max_members(client: httpx.AsyncClient) -> None:
    """max_members below the member count is 409; bad names 400; at the count is fine."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    group = await create_group(client, alice)
    url = f"{GROUPS}/{group['id']}"
    await add_member(client, alice, group["id"], bob)
    await add_member(client, alice, group["id"], carol)
    too_small = await client.patch(url, headers=alice.headers, json={"max_members": 2})
    assert too_small.status_code == 409 and error_code(too_small) == "CONFLICT"
    exact = await client.patch(url, headers=alice.headers, json={"max_members": 3})
    assert exact.status_code == 200 and exact.json()["data"]["max_members"] == 3
    assert "name" in bad_fields(await client.patch(url, headers=alice.headers, json={"name": "x"}))
    assert "max_members" in bad_fields(
        await client.patch(url, headers=alice.headers, json={"max_members": 1})
    )
    assert "visibility" in bad_fields(
        await client.patch(url, headers=alice.headers, json={"visibility": "hidden"})
    )


async def test_update_group_refuses_null_except_to_lift_the_cap(client: httpx.AsyncClient) -> None:
    """``null`` for a field that cannot be empty is 400; for max_members it lifts the cap."""
    alice = await account(client)
    group = await create_group(client, alice, max_members=10)
    url = f"{GROUPS}/{group['id']}"
    for field in ("name", "description", "subject", "visibility"):
        refused = await client.patch(url, headers=alice.headers, json={field: None})
        assert field in bad_fields(refused), refused.text
    lifted = await client.patch(url, headers=alice.headers, json={"max_members": None})
    assert lifted.status_code == 200 and lifted.json()["data"]["max_members"] is None
    kept = lifted.json()["data"]
    assert (kept["name"], kept["visibility"]) == (group["name"], group["visibility"])


async def test_only_the_owner_deletes_a_group(client: httpx.AsyncClient) -> None:
    """DELETE by an admin or a member is 403; by the owner 204, then the group is 404."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    group = await create_group(client, alice)
    url = f"{GROUPS}/{group['id']}"
    await add_member(client, alice, group["id"], bob)
    await add_member(client, alice, group["id"], carol)
    await set_role(client, alice, group["id"], bob, "admin")
    assert (await client.delete(url, headers=bob.headers)).status_code == 403
    assert (await client.delete(url, headers=carol.headers)).status_code == 403
    assert (await client.get(url, headers=carol.headers)).status_code == 200
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.get(url, headers=alice.headers)).status_code == 404


# --- join, leave, kick --------------------------------------------------------------------


async def test_join_public_group(client: httpx.AsyncClient) -> None:
    """Joining a public group is 200 with the membership; joining twice is 409."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="public")
    joined = await join(client, bob, group["id"])
    assert joined.status_code == 200, joined.text
    member = joined.json()["data"]
    assert member["user_id"] == bob.id and member["role"] == "member"
    assert member["username"] == bob.username and member["joined_at"].endswith("Z")
    seen = (await client.get(f"{GROUPS}/{group['id']}", headers=bob.headers)).json()["data"]
    assert seen["member_count"] == 2 and seen["role"] == "member"
    again = await join(client, bob, group["id"])
    assert again.status_code == 409 and error_code(again) == "CONFLICT"
    owner_joins = await join(client, alice, group["id"])
    assert owner_joins.status_code == 409


async def test_join_full_or_private_group_fails(client: httpx.AsyncClient) -> None:
    """A full public group is 409; a private group is 404 to outsiders."""
    alice, bob, carol = await account(client), await account(client), await account(client)
    full = await create_group(client, alice, visibility="public", max_members=2)
    assert (await join(client, bob, full["id"])).status_code == 200
    response = await join(client, carol, full["id"])
    assert response.status_code == 409 and error_code(response) == "CONFLICT"
    count = (await client.get(f"{GROUPS}/{full['id']}", headers=carol.headers)).json()["data"]
    assert count["member_count"] == 2
    private = await create_group(client, alice, visibility="private")
    response = await join(client, carol, private["id"])
    assert response.status_code == 404 and error_code(response) == "NOT_FOUND"
    assert (await join(client, carol, str(uuid.uuid4()))).status_code == 404


async def test_member_leaves_and_the_sole_owner_cannot(client: httpx.AsyncClient) -> None:
    """A member leaves with 204 and loses access; the owner leaving is 409."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    url = f"{GROUPS}/{group['id']}"
    await add_member(client, alice, group["id"], bob)
    left = await client.delete(f"{url}/members/{bob.id}", headers=bob.headers)
    assert left.status_code == 204
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (await client.get(url, headers=alice.headers)).json()["data"]["member_count"] == 1
    owner = await client.delete(f"{url}/members/{alice.id}", headers=alice.headers)
    assert owner.status_code == 409 and error_code(owner) == "CONFLICT"
    members = (await client.get(f"{url}/members", headers=alice.headers)).json()["data"]
    assert [m["user_id"] for m in members] == [alice.id]


async def test_kick_rules(client: httpx.AsyncClient) -> None:
    """Admins kick members only; the owner kicks admins; members kick nobody; 404 for outsiders."""
    owner, admin, admin2, member, member2, outsider = [await account(client) for _ in range(6)]
    group = await create_group(client, owner, visibility="private")
    gid = group["id"]
    url = f"{GROUPS}/{gid}/members"
    for user in (admin, admin2, member, member2):
        await add_member(client, owner, gid, user)
    for user in (admin, admin2):
        await set_role(client, owner, gid, user, "admin")

    async def kick(actor: Account, target: Account) -> int:
        return (await client.delete(f"{url}/{target.id}", headers=actor.headers)).status_code

    assert await kick(admin, admin2) == 403
    assert await kick(admin, owner) == 403
    assert await kick(member, member2) == 403
    assert await kick(member, admin) == 403
    assert await kick(admin, outsider) == 404
    assert await kick(admin, member) == 204
    assert await kick(owner, admin2) == 204
    assert (await client.get(f"{GROUPS}/{gid}", headers=member.headers)).status_code == 404
    listed = (await client.get(url, headers=owner.headers, params={"sort": "username"})).json()
    assert {m["user_id"] for m in listed["data"]} == {owner.id, admin.id, member2.id}
    assert listed["pagination"]["total"] == 3
    assert (await client.get(f"{GROUPS}/{gid}", headers=owner.headers)).json()["data"][
        "member_count"
    ] == 3


async def test_members_list_filters_sorts_and_searches(client: httpx.AsyncClient) -> None:
    """GET members supports filter[role], sort=username / -joined_at, search and paging."""
    owner, admin, member = [await account(client) for _ in range(3)]
    group = await create_group(client, owner)
    url = f"{GROUPS}/{group['id']}/members"
    for user in (admin, member):
        await add_member(client, owner, group["id"], user)
    await set_role(client, owner, group["id"], admin, "admin")
    admins = (
        await client.get(url, headers=member.headers, params={"filter[role]": "ADMIN"})
    ).json()
    assert [m["user_id"] for m in admins["data"]] == [admin.id]
    by_join = (await client.get(url, headers=member.headers)).json()["data"]
    assert [m["user_id"] for m in by_join] == [owner.id, admin.id, member.id]
    newest = (await client.get(url, headers=member.headers, params={"sort": "-joined_at"})).json()
    assert [m["user_id"] for m in newest["data"]] == [member.id, admin.id, owner.id]
    names = (await client.get(url, headers=member.headers, params={"sort": "username"})).json()
    usernames = [m["username"] for m in names["data"]]
    assert usernames == sorted(usernames)
    found = await client.get(url, headers=member.headers, params={"search": admin.username})
    assert [m["user_id"] for m in found.json()["data"]] == [admin.id]
    page = (await client.get(url, headers=member.headers, params={"page_size": "2"})).json()
    assert page["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    for params in ({"filter[email]": "x"}, {"sort": "email"}, {"page_size": "101"}):
        assert (await client.get(url, headers=member.headers, params=params)).status_code == 400


# --- roles --------------------------------------------------------------------------------


async def test_owner_changes_roles_others_cannot(client: httpx.AsyncClient) -> None:
    """The owner promotes and demotes; an admin or member changing roles is 403."""
    alice, bob, carol, dave = [await account(client) for _ in range(4)]
    group = await create_group(client, alice)
    gid = group["id"]
    for user in (bob, carol):
        await add_member(client, alice, gid, user)
    url = f"{GROUPS}/{gid}/members"
    promoted = await client.patch(f"{url}/{bob.id}", headers=alice.headers, json={"role": "admin"})
    assert promoted.status_code == 200
    assert promoted.json()["data"]["role"] == "admin"
    assert promoted.json()["data"]["user_id"] == bob.id
    by_admin = await client.patch(f"{url}/{carol.id}", headers=bob.headers, json={"role": "admin"})
    assert by_admin.status_code == 403 and error_code(by_admin) == "FORBIDDEN"
    by_member = await client.patch(
        f"{url}/{bob.id}", headers=carol.headers, json={"role": "member"}
    )
    assert by_member.status_code == 403
    demoted = await client.patch(f"{url}/{bob.id}", headers=alice.headers, json={"role": "member"})
    assert demoted.status_code == 200 and demoted.json()["data"]["role"] == "member"
    self_change = await client.patch(
        f"{url}/{alice.id}", headers=alice.headers, json={"role": "member"}
    )
    assert self_change.status_code == 409 and error_code(self_change) == "CONFLICT"
    outsider = await client.patch(f"{url}/{dave.id}", headers=alice.headers, json={"role": "admin"})
    assert outsider.status_code == 404
    bad = await client.patch(f"{url}/{bob.id}", headers=alice.headers, json={"role": "king"})
    assert "role" in bad_fields(bad)
    roles = {
        m["user_id"]: m["role"] for m in (await client.get(url, headers=bob.headers)).json()["data"]
    }
    assert roles == {alice.id: "owner", bob.id: "member", carol.id: "member"}


async def test_transfer_ownership(client: httpx.AsyncClient) -> None:
    """Giving 'owner' hands the group over: the old owner becomes admin and owner_id moves."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice)
    gid = group["id"]
    await add_member(client, alice, gid, bob)
    url = f"{GROUPS}/{gid}/members"
    handed = await client.patch(f"{url}/{bob.id}", headers=alice.headers, json={"role": "owner"})
    assert handed.status_code == 200, handed.text
    assert handed.json()["data"]["role"] == "owner"
    seen = (await client.get(f"{GROUPS}/{gid}", headers=alice.headers)).json()["data"]
    assert seen["owner_id"] == bob.id and seen["role"] == "admin"
    roles = {
        m["user_id"]: m["role"] for m in (await client.get(url, headers=bob.headers)).json()["data"]
    }
    assert roles == {alice.id: "admin", bob.id: "owner"}
    back = await client.patch(f"{url}/{alice.id}", headers=alice.headers, json={"role": "owner"})
    assert back.status_code == 403
    assert (await client.delete(f"{GROUPS}/{gid}", headers=alice.headers)).status_code == 403
    assert (await client.delete(f"{url}/{bob.id}", headers=bob.headers)).status_code == 409
    assert (await client.delete(f"{url}/{alice.id}", headers=alice.headers)).status_code == 204
    final = (await client.get(f"{GROUPS}/{gid}", headers=bob.headers)).json()["data"]
    assert final["member_count"] == 1 and final["role"] == "owner"
