"""Faker-backed accounts: payloads, and registered, logged-in users."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from faker import Faker

fake = Faker()
PASSWORD = "violet-harbour-lantern-42"


def user_payload(**overrides: Any) -> dict[str, Any]:
    """A valid registration body with unique email and username."""
    suffix = uuid.uuid4().hex[:8]
    base = re.sub(r"[^a-z0-9_.-]", "", fake.user_name().lower())[:20] or "user"
    payload = {
        "email": f"{base}.{suffix}@{fake.domain_name()}",
        "username": f"{base}_{suffix}",
        "password": PASSWORD,
        "display_name": fake.name(),
    }
    payload.update(overrides)
    return payload


@dataclass
class Account:
    """A registered user with a live access token."""

    id: str
    email: str
    username: str
    password: str
    token: str
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The bearer header."""
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Register a user; return the payload used (with the new id)."""
    payload = user_payload(**overrides)
    response = await client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 201, response.text
    payload["id"] = response.json()["data"]["id"]
    return payload


async def login(
    client: httpx.AsyncClient, email: str, password: str, **extra: Any
) -> httpx.Response:
    """POST /auth/login."""
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password, **extra}
    )


async def account(client: httpx.AsyncClient, **overrides: Any) -> Account:
    """A registered, logged-in user."""
    payload = await register(client, **overrides)
    response = await login(client, payload["email"], payload["password"])
    assert response.status_code == 200, response.text
    return Account(
        id=payload["id"],
        email=payload["email"],
        username=payload["username"],
        password=payload["password"],
        token=response.json()["data"]["access_token"],
        cookies=dict(response.cookies),
    )
