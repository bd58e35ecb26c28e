"""Profiles, avatars, password changes, export and erasure over HTTP."""

from __future__ import annotations

import struct
import uuid
import zlib

import httpx
import pytest

from server.security.scanner import EICAR
from tests.factories.mfa import TotpDevice
from tests.factories.users import account, login


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))
        + chunk(b"IEND", b"")
    )


async def test_me_shows_private_fields_and_others_see_public(client: httpx.AsyncClient) -> None:
    """Email is in /me and never in another user's view."""
    alice, bob = await account(client), await account(client)
    me = (await client.get("/api/v1/users/me", headers=alice.headers)).json()["data"]
    assert me["email"] == alice.email and "updated_at" in me
    seen = (await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)).json()["data"]
    assert seen["username"] == alice.username
    assert "email" not in seen and "mfa_enabled" not in seen


async def test_profile_update_is_sanitised_and_invalidates_the_cache(
    client: httpx.AsyncClient,
) -> None:
    """PATCH escapes HTML, strips control characters, and GET /users/{id} shows it at once."""
    alice, bob = await account(client), await account(client)
    url = f"/api/v1/users/{alice.id}"
    await client.get(url, headers=bob.headers)  # warm the cache
    patch = {"display_name": "Ali\x00ce <i>", "bio": "line1\nline2\x07"}
    updated = await client.patch("/api/v1/users/me", headers=alice.headers, json=patch)
    assert updated.status_code == 200
    assert updated.json()["data"]["display_name"] == "Alice &lt;i&gt;"
    assert updated.json()["data"]["bio"] == "line1\nline2"
    seen = (await client.get(url, headers=bob.headers)).json()["data"]
    assert seen["display_name"] == "Alice &lt;i&gt;"


async def test_profile_update_rejects_blank_and_unknown_fields(client: httpx.AsyncClient) -> None:
    """A blank display name and an unknown field are 400s."""
    alice = await account(client)
    blank = await client.patch(
        "/api/v1/users/me", headers=alice.headers, json={"display_name": "   "}
    )
    assert blank.status_code == 400
    unknown = await client.patch("/api/v1/users/me", headers=alice.headers, json={"email": "x@y.z"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["fields"][0]["field"] == "email"


@pytest.mark.parametrize("field", ["display_name", "bio"])
async def test_profile_update_refuses_null(client: httpx.AsyncClient, field: str) -> None:
    """``null`` is 400 naming the field (send "" for an empty bio)."""
    alice = await account(client)
    refused = await client.patch("/api/v1/users/me", headers=alice.headers, json={field: None})
    assert refused.status_code == 400
    problems = refused.json()["error"]["details"]["fields"]
    assert [(p["field"], p["message"]) for p in problems] == [(field, "null is not allowed here")]


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    """Ids that do not exist, or are not UUIDs, are 404."""
    alice = await account(client)
    assert (
        await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=alice.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/users/not-a-uuid", headers=alice.headers)).status_code == 404


async def test_user_search_paginates(client: httpx.AsyncClient) -> None:
    """Search by a shared display name, two per page, with true totals."""
    tag = uuid.uuid4().hex[:10]
    users = [await account(client, display_name=f"Study {tag} {i}") for i in range(3)]
    params = {"search": tag, "page_size": "2", "sort": "created_at"}
    first = (await client.get("/api/v1/users", headers=users[0].headers, params=params)).json()
    assert first["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    assert [u["id"] for u in first["data"]] == [users[0].id, users[1].id]
    last = await client.get(
        "/api/v1/users", headers=users[0].headers, params={**params, "page": "3"}
    )
    assert last.status_code == 200 and last.json()["data"] == []
    bad = await client.get("/api/v1/users", headers=users[0].headers, params={"page_size": "101"})
    assert bad.status_code == 400


async def test_avatar_upload_checks_size_malware_and_type(client: httpx.AsyncClient) -> None:
    """PNG accepted and served; EICAR 400; text 415; over 2 MiB 413; wrong encoding 415."""
    alice = await account(client)
    url = "/api/v1/users/me/avatar"
    good = await client.put(
        url, headers=alice.headers, files={"file": ("a.png", tiny_png(), "image/png")}
    )
    assert good.status_code == 200
    avatar_url = good.json()["data"]["avatar_url"]
    served = await client.get(avatar_url)
    assert served.status_code == 200 and served.content == tiny_png()
    eicar = await client.put(
        url, headers=alice.headers, files={"file": ("e.png", EICAR, "image/png")}
    )
    assert eicar.status_code == 400
    text = await client.put(
        url, headers=alice.headers, files={"file": ("t.png", b"hello world", "image/png")}
    )
    assert text.status_code == 415
    huge = tiny_png() + b"\0" * (2 * 1024 * 1024)
    big = await client.put(url, headers=alice.headers, files={"file": ("b.png", huge, "image/png")})
    assert big.status_code == 413
    not_multipart = await client.put(url, headers=alice.headers, content=tiny_png())
    assert not_multipart.status_code == 415
    wrong_field = await client.put(
        url, headers=alice.headers, files={"image": ("a.png", tiny_png(), "image/png")}
    )
    assert wrong_field.status_code == 400


async def test_password_change_ends_other_sessions_and_old_tokens(
    client: httpx.AsyncClient,
) -> None:
    """New password: old access token 401, other session's refresh 401, new token works."""
    alice = await account(client)
    other = await login(client, alice.email, alice.password)
    other_refresh = other.cookies["refresh_token"]
    client.cookies.clear()
    body = {"current_password": alice.password, "new_password": "a-brand-new-passphrase-77"}
    wrong = await client.put(
        "/api/v1/users/me/password",
        headers=alice.headers,
        json={**body, "current_password": "nope-nope-nope"},
    )
    assert wrong.status_code == 403
    changed = await client.put("/api/v1/users/me/password", headers=alice.headers, json=body)
    assert changed.status_code == 200
    fresh = changed.json()["data"]["access_token"]
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {fresh}"})
    ).status_code == 200
    headers = {"Cookie": f"refresh_token={other_refresh}; csrf_token=t", "X-CSRF-Token": "t"}
    assert (await client.post("/api/v1/auth/refresh", headers=headers)).status_code == 401
    assert (await login(client, alice.email, alice.password)).status_code == 401
    assert (await login(client, alice.email, body["new_password"])).status_code == 200


async def test_password_change_with_mfa_needs_a_code(client: httpx.AsyncClient) -> None:
    """MFA on: no code -> MFA_REQUIRED; common new password -> 400."""
    alice = await account(client)
    setup = await client.post("/api/v1/auth/mfa/setup", headers=alice.headers)
    device = TotpDevice(setup.json()["data"]["secret"])
    await client.post(
        "/api/v1/auth/mfa/enable", headers=alice.headers, json={"code": device.next_code()}
    )
    body = {"current_password": alice.password, "new_password": "another-good-passphrase-9"}
    missing = await client.put("/api/v1/users/me/password", headers=alice.headers, json=body)
    assert missing.json()["error"]["code"] == "MFA_REQUIRED"
    common = {**body, "new_password": "password1234", "totp_code": device.next_code()}
    assert (
        await client.put("/api/v1/users/me/password", headers=alice.headers, json=common)
    ).status_code == 400


async def test_export_contains_what_is_held(client: httpx.AsyncClient) -> None:
    """The export has the account and every section, without secrets."""
    alice = await account(client)
    export = await client.get("/api/v1/users/me/export", headers=alice.headers)
    assert export.status_code == 200
    data = export.json()["data"]
    assert data["user"]["email"] == alice.email
    for section in ("memberships", "messages", "invites_received", "invites_sent", "sessions"):
        assert section in data
    assert len(data["sessions"]) == 1
    assert "password_hash" not in export.text and "token_hash" not in export.text


async def test_delete_account_needs_the_password_and_erases(client: httpx.AsyncClient) -> None:
    """Wrong password 403; right one 204; afterwards nothing answers for the account."""
    alice, bob = await account(client), await account(client)
    wrong = await client.request(
        "DELETE", "/api/v1/users/me", headers=alice.headers, json={"password": "wrong-one-1234"}
    )
    assert wrong.status_code == 403
    gone = await client.request(
        "DELETE", "/api/v1/users/me", headers=alice.headers, json={"password": alice.password}
    )
    assert gone.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    assert (await login(client, alice.email, alice.password)).status_code == 401
    assert (await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)).status_code == 404
