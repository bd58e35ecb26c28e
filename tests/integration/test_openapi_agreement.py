"""Issue 16: where schemathesis found the OpenAPI document and the server disagreeing.

Each test replays one finding against a real node and checks that the server now does what
the document says (``make schemathesis`` runs the whole document; this keeps each fix in the
normal suite).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.factories.groups import GROUPS, assignment_payload, create_group, group_payload
from tests.factories.users import Account, account, user_payload

LISTS = (
    "/api/v1/study-groups",
    "/api/v1/users",
    "/api/v1/invites",
    "/api/v1/webhooks",
)


async def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    return [problem["field"] for problem in response.json()["error"]["details"]["fields"]]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
async def test_an_empty_date_is_refused_on_every_list(
    client: httpx.AsyncClient, path: str, name: str
) -> None:
    """``created_after=`` is not a date: 400 naming it (the document says date or date-time)."""
    me = await account(client)
    response = await client.get(path, headers=me.headers, params={name: ""})
    assert await _fields(response) == [name]


@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00", " 2026-01-01", "2026-W01-1", "2026-01-01T00"]
)
async def test_dates_are_a_date_or_an_rfc3339_date_time_with_its_zone(
    client: httpx.AsyncClient, value: str
) -> None:
    """Python reads these; RFC 3339 (the document's ``date-time``) does not, so neither do we."""
    me = await account(client)
    response = await client.get(GROUPS, headers=me.headers, params={"created_after": value})
    assert await _fields(response) == ["created_after"]


async def test_choice_filters_take_their_values_in_any_case(client: httpx.AsyncClient) -> None:
    """``filter[visibility]=PUBLIC`` and ``filter[member]=ME`` match; ``''`` is refused."""
    me = await account(client)
    subject = f"agree-{uuid.uuid4().hex[:8]}"
    group = await create_group(client, me, subject=subject)
    params = {"filter[subject]": subject, "filter[visibility]": "PUBLIC", "filter[member]": "ME"}
    listed = await client.get(GROUPS, headers=me.headers, params=params)
    assert [g["id"] for g in listed.json()["data"]] == [group["id"]]
    for name in ("filter[visibility]", "filter[member]"):
        response = await client.get(GROUPS, headers=me.headers, params={name: ""})
        assert await _fields(response) == [name]


@pytest.mark.parametrize("page", ["1000000001", "30196979968156096780664339169280", "٣"])
async def test_a_page_past_the_documented_maximum_is_400_not_500(
    client: httpx.AsyncClient, page: str
) -> None:
    me = await account(client)
    response = await client.get(GROUPS, headers=me.headers, params={"page": page})
    assert await _fields(response) == ["page"]


@pytest.mark.parametrize("name", ["after_seq", "before_seq"])
async def test_a_seq_past_the_database_integers_is_400_not_500(
    client: httpx.AsyncClient, name: str
) -> None:
    me = await account(client)
    group = await create_group(client, me)
    url = f"{GROUPS}/{group['id']}/messages"
    response = await client.get(url, headers=me.headers, params={name: str(2**63)})
    assert await _fields(response) == [name]
    fits = await client.get(url, headers=me.headers, params={name: str(2**63 - 1)})
    assert fits.status_code == 200, fits.text


async def test_sort_fields_are_not_trimmed(client: httpx.AsyncClient) -> None:
    me = await account(client)
    response = await client.get(GROUPS, headers=me.headers, params={"sort": "name, -created_at"})
    assert await _fields(response) == ["sort"]


async def test_text_limits_count_code_points_as_sent(client: httpx.AsyncClient) -> None:
    """A name or title over its limit is refused even when control characters make it up."""
    me = await account(client)
    name = "n" * 99 + "\x0f\x10"  # 101 code points; 99 once the controls are removed
    response = await client.post(GROUPS, headers=me.headers, json=group_payload(name=name))
    assert await _fields(response) == ["name"]
    group = await create_group(client, me)
    title = "t" * 199 + "\x0f\x10"
    url = f"{GROUPS}/{group['id']}/assignments"
    response = await client.post(url, headers=me.headers, json=assignment_payload(title=title))
    assert await _fields(response) == ["title"]
    fits = await client.post(url, headers=me.headers, json=assignment_payload(title=title[:200]))
    assert fits.status_code == 201, fits.text
    assert fits.json()["data"]["title"] == "t" * 199


@pytest.mark.parametrize("text", ["\x18", " ", "\t\n", "\x00\x85 "])
async def test_blank_text_is_refused_as_the_pattern_says(
    client: httpx.AsyncClient, text: str
) -> None:
    me = await account(client)
    group = await create_group(client, me)
    url = f"{GROUPS}/{group['id']}/messages"
    response = await client.post(url, headers=me.headers, json={"body": text, "client_msg_id": "x"})
    assert await _fields(response) == ["body"]


@pytest.mark.parametrize(
    "due", ["0273-05-01T10:00:00Z", "2100-01-01T00:00:00Z", "1999-12-31T23:59:59Z"]
)
async def test_due_dates_are_bounded_to_this_century(client: httpx.AsyncClient, due: str) -> None:
    """Years 2000..2099 as written: the year 273 was accepted before."""
    me = await account(client)
    group = await create_group(client, me)
    url = f"{GROUPS}/{group['id']}/assignments"
    response = await client.post(url, headers=me.headers, json=assignment_payload(due_at=due))
    assert await _fields(response) == ["due_at"]


async def test_integral_numbers_are_integers(client: httpx.AsyncClient) -> None:
    """JSON Schema's integer includes ``30.0``; the server now agrees (``30.5`` stays refused)."""
    me = await account(client)
    created = await client.post(GROUPS, headers=me.headers, json=group_payload(max_members=30.0))
    assert created.status_code == 201, created.text
    assert created.json()["data"]["max_members"] == 30
    refused = await client.post(GROUPS, headers=me.headers, json=group_payload(max_members=30.5))
    assert await _fields(refused) == ["max_members"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "jane@example.c"}, "email"),  # one-letter top-level domain
        ({"email": "jane@exam_ple.com"}, "email"),
        ({"username": "jane doe"}, "username"),
        ({"password": "000000000000"}, "password"),  # on the common list
        ({"password": "LetMeInLetMeIn"}, "password"),  # the same, in another case
        ({"display_name": " \x01 "}, "display_name"),
    ],
)
async def test_registration_rules_are_the_documented_ones(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=user_payload(**overrides))
    assert await _fields(response) == [field]


async def test_a_wrong_mfa_code_and_a_malformed_one(client: httpx.AsyncClient) -> None:
    """Not 6 digits: refused by the documented pattern; 6 wrong digits: 400 naming ``code``."""
    me: Account = await account(client)
    assert (await client.post("/api/v1/auth/mfa/setup", headers=me.headers)).status_code == 200
    for code in ("", "12345", "1234567", "12a456"):
        response = await client.post(
            "/api/v1/auth/mfa/enable", headers=me.headers, json={"code": code}
        )
        assert await _fields(response) == ["code"]


async def test_patch_bodies_are_optional_as_documented(client: httpx.AsyncClient) -> None:
    """Every field of a PATCH is optional, so no body at all changes nothing (200)."""
    me = await account(client)
    group = await create_group(client, me)
    unchanged = await client.patch(f"{GROUPS}/{group['id']}", headers=me.headers)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["data"]["name"] == group["name"]
