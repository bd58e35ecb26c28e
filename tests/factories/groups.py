"""Faker-backed study groups: payloads, and groups, members, messages made over HTTP."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from faker import Faker

from tests.factories.users import Account

fake = Faker()
GROUPS = "/api/v1/study-groups"


def _plain(text: str, limit: int) -> str:
    """Letters, digits, spaces and hyphens only, so sanitising leaves the text unchanged."""
    return re.sub(r"[^A-Za-z0-9 -]", "", text)[:limit].strip()


def group_payload(**overrides: Any) -> dict[str, Any]:
    """A valid create-group body with a unique name (public unless overridden)."""
    suffix = uuid.uuid4().hex[:8]
    payload: dict[str, Any] = {
        "name": f"{_plain(fake.catch_phrase(), 80) or 'Study group'} {suffix}",
        "description": _plain(fake.sentence(nb_words=8), 200),
        "subject": _plain(fake.word(), 40) or "mathematics",
        "visibility": "public",
    }
    payload.update(overrides)
    return payload


def assignment_payload(**overrides: Any) -> dict[str, Any]:
    """A valid create-assignment body, due in about a week (UTC, with a zone)."""
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=fake.random_int(1, 14))
    payload: dict[str, Any] = {
        "title": _plain(fake.sentence(nb_words=5), 150) or "Problem set",
        "description": _plain(fake.paragraph(nb_sentences=2), 1000),
        "due_at": due.isoformat().replace("+00:00", "Z"),
    }
    payload.update(overrides)
    return payload


async def create_group(
    client: httpx.AsyncClient, owner: Account, **overrides: Any
) -> dict[str, Any]:
    """Create a group owned by ``owner``; return the group JSON."""
    response = await client.post(GROUPS, headers=owner.headers, json=group_payload(**overrides))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def invite(
    client: httpx.AsyncClient, inviter: Account, group_id: str, invitee: Account
) -> dict[str, Any]:
    """Invite ``invitee``; return the invite JSON."""
    response = await client.post(
        f"{GROUPS}/{group_id}/invites", headers=inviter.headers, json={"user_id": invitee.id}
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def add_member(
    client: httpx.AsyncClient, owner: Account, group_id: str, user: Account
) -> dict[str, Any]:
    """Bring ``user`` into the group (invite, then accept); return the member JSON."""
    sent = await invite(client, owner, group_id, user)
    response = await client.post(f"/api/v1/invites/{sent['id']}/accept", headers=user.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def set_role(
    client: httpx.AsyncClient, owner: Account, group_id: str, user: Account, role: str
) -> dict[str, Any]:
    """Give a member a role (the owner's call); return the member JSON."""
    response = await client.patch(
        f"{GROUPS}/{group_id}/members/{user.id}", headers=owner.headers, json={"role": role}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def post_message(
    client: httpx.AsyncClient, user: Account, group_id: str, body: str | None = None
) -> dict[str, Any]:
    """Send a message over REST with a fresh client_msg_id; return the message JSON."""
    payload = {"body": body or fake.sentence(), "client_msg_id": uuid.uuid4().hex}
    response = await client.post(
        f"{GROUPS}/{group_id}/messages", headers=user.headers, json=payload
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def run_sql(database_url: str, sql: str, *args: Any) -> str:
    """Run one statement directly against the node's database; return its status line."""
    conn = await asyncpg.connect(database_url)
    try:
        status: str = await conn.execute(sql, *args)
    finally:
        await conn.close()
    return status


async def public_group(client: httpx.AsyncClient, owner: Account, *members: Account) -> str:
    """A public group owned by ``owner`` that ``members`` have joined; return its id."""
    group_id = str((await create_group(client, owner, visibility="public"))["id"])
    for member in members:
        response = await client.post(f"{GROUPS}/{group_id}/join", headers=member.headers)
        assert response.status_code == 200, response.text
    return group_id
