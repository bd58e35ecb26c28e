"""Account edge cases: erasure of an owner, races at registration, cached profiles."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from server.errors import Unauthorized
from server.settings import Settings
from server.store.models import DeadLetter
from tests.factories.groups import public_group
from tests.factories.users import account, register, user_payload
from tests.fixtures.server import RunningServer
from tests.fixtures.services import REDIS_URL
from tests.integration.test_users import tiny_png


async def test_deleting_an_owner_hands_groups_over_and_erases_messages(
    client: httpx.AsyncClient,
) -> None:
    """The admin inherits the group, a solo group disappears, messages leave history."""
    owner, admin, member = await account(client), await account(client), await account(client)
    shared = await public_group(client, owner)
    solo = await public_group(client, owner)
    for user in (admin, member):
        assert (
            await client.post(f"/api/v1/study-groups/{shared}/join", headers=user.headers)
        ).status_code == 200
    promote = await client.patch(
        f"/api/v1/study-groups/{shared}/members/{admin.id}",
        headers=owner.headers,
        json={"role": "admin"},
    )
    assert promote.status_code == 200
    posted = await client.post(
        f"/api/v1/study-groups/{shared}/messages",
        headers=owner.headers,
        json={"body": "bye", "client_msg_id": "x"},
    )
    assert posted.status_code == 201
    avatar = await client.put(
        "/api/v1/users/me/avatar",
        headers=owner.headers,
        files={"file": ("a.png", tiny_png(), "image/png")},
    )
    avatar_url = avatar.json()["data"]["avatar_url"]

    gone = await client.request(
        "DELETE", "/api/v1/users/me", headers=owner.headers, json={"password": owner.password}
    )
    assert gone.status_code == 204

    group = (await client.get(f"/api/v1/study-groups/{shared}", headers=admin.headers)).json()[
        "data"
    ]
    assert group["owner_id"] == admin.id and group["role"] == "owner" and group["member_count"] == 2
    assert (
        await client.get(f"/api/v1/study-groups/{solo}", headers=admin.headers)
    ).status_code == 404
    history = (
        await client.get(f"/api/v1/study-groups/{shared}/messages", headers=member.headers)
    ).json()
    assert history["data"] == [] and history["pagination"]["total"] == 0
    assert (await client.get(avatar_url)).status_code == 404


async def test_member_owner_successor_when_no_admin(client: httpx.AsyncClient) -> None:
    """Without an admin, the longest-standing member becomes owner."""
    owner, first, second = await account(client), await account(client), await account(client)
    group = await public_group(client, owner)
    for user in (first, second):
        await client.post(f"/api/v1/study-groups/{group}/join", headers=user.headers)
    await client.request(
        "DELETE", "/api/v1/users/me", headers=owner.headers, json={"password": owner.password}
    )
    data = (await client.get(f"/api/v1/study-groups/{group}", headers=second.headers)).json()[
        "data"
    ]
    assert data["owner_id"] == first.id


async def test_concurrent_registrations_of_one_email(client: httpx.AsyncClient) -> None:
    """Two racing registrations of one email: exactly one account."""
    payload = user_payload()
    other = {**payload, "username": payload["username"] + "x"}
    first, second = await asyncio.gather(
        client.post("/api/v1/auth/register", json=payload),
        client.post("/api/v1/auth/register", json=other),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]


async def test_public_profile_is_served_from_the_cache(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The first read fills a 5-minute Redis entry that later reads use."""
    alice, bob = await account(client), await account(client)
    await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)
    redis = Redis.from_url(REDIS_URL)
    try:
        key = f"{settings.redis_prefix}cache:user:{alice.id}"
        assert 0 < await redis.ttl(key) <= 300
        again = await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)
        assert again.json()["data"]["id"] == alice.id
    finally:
        await redis.aclose()


async def test_partial_profile_updates(client: httpx.AsyncClient) -> None:
    """Only the fields sent change."""
    alice = await account(client)
    bio = await client.patch("/api/v1/users/me", headers=alice.headers, json={"bio": "hello"})
    name = await client.patch(
        "/api/v1/users/me", headers=alice.headers, json={"display_name": "Al"}
    )
    assert bio.json()["data"]["bio"] == "hello"
    assert name.json()["data"] == {**name.json()["data"], "bio": "hello", "display_name": "Al"}


async def test_password_change_with_a_sessionless_token_revokes_every_session(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A token without a session claim keeps no refresh family."""
    payload = await register(client)
    login = await client.post(
        "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
    )
    refresh = login.cookies["refresh_token"]
    client.cookies.clear()
    now = time.time()
    claims = {
        "sub": payload["id"],
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + 60,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": "j",
    }
    token = jwt.encode(
        claims, settings.jwt_secret, algorithm="HS256", headers={"kid": settings.jwt_key_id}
    )
    body = {"current_password": payload["password"], "new_password": "a-new-and-long-passphrase"}
    changed = await client.put(
        "/api/v1/users/me/password", headers={"Authorization": f"Bearer {token}"}, json=body
    )
    assert changed.status_code == 200
    headers = {"Cookie": f"refresh_token={refresh}; csrf_token=t", "X-CSRF-Token": "t"}
    assert (await client.post("/api/v1/auth/refresh", headers=headers)).status_code == 401


async def test_sensitive_operations_on_a_vanished_account(node: RunningServer) -> None:
    """The service refuses to act for an account that no longer exists."""
    with pytest.raises(Unauthorized):
        await node.domain.auth.setup_mfa(uuid.uuid4())


async def test_two_erasures_of_one_account_at_once_erase_it_once(
    node: RunningServer, client: httpx.AsyncClient
) -> None:
    """A double click on "delete my account": one erasure, the other finds no user (404).

    Both passed the password check and erased: 500 on the second pending erasure (3 runs in
    11), or the erasure done twice.
    """
    user = await account(client)
    users = node.domain.users
    outcomes = await asyncio.gather(
        *(
            users.delete_account(uuid.UUID(user.id), password=user.password, totp_code=None)
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NoneType", "NotFound"]
    pair = await asyncio.gather(
        *(
            client.request(
                "DELETE",
                "/api/v1/users/me",
                headers=other.headers,
                json={"password": other.password},
            )
            for other in [await account(client)] * 2
        )
    )
    assert sorted(response.status_code for response in pair)[0] == 204
    assert all(response.status_code in (204, 401, 404) for response in pair), pair


async def test_logout_with_an_unknown_refresh_token_is_harmless(client: httpx.AsyncClient) -> None:
    """A refresh cookie the server never issued: 204, nothing revoked, nothing broken."""
    client.cookies.clear()
    headers = {"Cookie": "refresh_token=never-issued; csrf_token=t", "X-CSRF-Token": "t"}
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204


async def test_malformed_multipart_is_a_validation_error(client: httpx.AsyncClient) -> None:
    """A multipart body that does not parse is a 400, not a 500."""
    alice = await account(client)
    headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=xyz"}
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + b"x" * 2_000_000
    )
    response = await client.put("/api/v1/users/me/avatar", headers=headers, content=body)
    assert response.status_code in (400, 413)
    assert response.json()["error"]["code"] in ("VALIDATION_ERROR", "PAYLOAD_TOO_LARGE")


async def test_multipart_without_boundary_or_with_broken_headers(client: httpx.AsyncClient) -> None:
    """No boundary: 415. A part whose headers do not parse: 400."""
    alice = await account(client)
    url = "/api/v1/users/me/avatar"
    no_boundary = await client.put(
        url, headers={**alice.headers, "Content-Type": "multipart/form-data"}, content=b"x"
    )
    assert no_boundary.status_code == 415
    broken = b"--xyz\r\nthis is not a header line at all\r\n\r\ndata\r\n--xyz--\r\n"
    headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=xyz"}
    response = await client.put(url, headers=headers, content=broken)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Malformed multipart body")


async def test_the_avatar_service_keeps_its_size_limit(node: RunningServer) -> None:
    """Called directly, the service still refuses more than 2 MiB."""
    from server.errors import PayloadTooLarge

    with pytest.raises(PayloadTooLarge):
        await node.domain.users.set_avatar(uuid.uuid4(), b"\0" * (2 * 1024 * 1024 + 1))


async def test_erasure_drops_failed_jobs_that_carry_the_address(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """A reset email that failed every attempt kept the address; the erasure drops it."""
    user, other = await account(client), await account(client)
    async with node.db.session() as session, session.begin():
        for email in (user.email.upper(), other.email):
            session.add(
                DeadLetter(
                    task="accounts.send_reset_email",
                    args=[email],
                    kwargs={},
                    attempts=3,
                    last_error="SMTP down",
                )
            )
    gone = await client.request(
        "DELETE", "/api/v1/users/me", headers=user.headers, json={"password": user.password}
    )
    assert gone.status_code == 204
    async with node.db.session() as session:
        kept = (await session.scalars(select(DeadLetter.args))).all()
    flat = [arg for args in kept for arg in args]
    assert user.email.upper() not in flat and other.email in flat
