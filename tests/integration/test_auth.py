"""Registration, login, tokens, refresh families, CSRF, logout and MFA over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import httpx
import jwt
import pytest

from server.settings import Settings
from tests.factories.mfa import TotpDevice
from tests.factories.users import PASSWORD, Account, account, login, register, user_payload

REGISTER = "/api/v1/auth/register"


async def test_register_returns_the_private_user(client: httpx.AsyncClient) -> None:
    """A new account comes back with 201, its email and no secrets."""
    payload = user_payload(display_name="Ada <b>L</b>")
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "Created"
    user = body["data"]
    assert user["email"] == payload["email"].lower()
    assert user["display_name"] == "Ada &lt;b&gt;L&lt;/b&gt;"
    assert user["mfa_enabled"] is False
    assert "password" not in json.dumps(user) and "password_hash" not in user


async def test_duplicate_email_in_other_case_conflicts(client: httpx.AsyncClient) -> None:
    """Emails are unique case-insensitively."""
    first = await register(client)
    again = user_payload(email=first["email"].upper())
    response = await client.post(REGISTER, json=again)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert response.json()["error"]["details"]["fields"][0]["field"] == "email"


async def test_duplicate_username_in_other_case_conflicts(client: httpx.AsyncClient) -> None:
    """Usernames are unique case-insensitively."""
    first = await register(client)
    response = await client.post(REGISTER, json=user_payload(username=first["username"].upper()))
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("username", "ab"),
        ("username", "has space"),
        ("password", "short"),
        ("password", "password1234"),
        ("password", "x" * 129),
    ],
)
async def test_register_rejects_bad_fields(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    """Each bad field is named with a message and a suggestion."""
    response = await client.post(REGISTER, json=user_payload(**{field: value}))
    assert response.status_code == 400
    problems = response.json()["error"]["details"]["fields"]
    assert problems[0]["field"] == field
    assert problems[0]["message"] and problems[0]["suggestion"]


async def test_password_over_72_bytes_works(client: httpx.AsyncClient) -> None:
    """A 73-byte password registers and logs in; a one-character change does not."""
    password = "é" * 36 + "x"  # 73 bytes in UTF-8
    assert len(password.encode()) == 73
    payload = await register(client, password=password)
    assert (await login(client, payload["email"], password)).status_code == 200
    assert (await login(client, payload["email"], password[:-1] + "y")).status_code == 401


async def test_thousand_byte_password_is_a_clear_error_not_a_500(client: httpx.AsyncClient) -> None:
    """1,000 bytes is over 128 characters: 400 at registration, 401 at login."""
    password = "😀" * 250
    assert len(password.encode()) == 1000
    response = await client.post(REGISTER, json=user_payload(password=password))
    assert response.status_code == 400
    payload = await register(client)
    assert (await login(client, payload["email"], password)).status_code == 401


async def test_login_returns_token_user_and_cookies(client: httpx.AsyncClient) -> None:
    """Login data carries a Bearer token of 900 s and sets the session cookies."""
    payload = await register(client)
    response = await login(client, payload["email"].upper(), payload["password"])
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["token_type"] == "Bearer" and data["expires_in"] == 900
    assert data["user"]["id"] == payload["id"]
    cookies = response.headers.get_list("set-cookie")
    refresh = next(c for c in cookies if c.startswith("refresh_token="))
    csrf = next(c for c in cookies if c.startswith("csrf_token="))
    assert "HttpOnly" in refresh and "SameSite=strict" in refresh and "Path=/" in refresh
    assert "Max-Age=604800" in refresh and "Secure" not in refresh
    assert "HttpOnly" not in csrf
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert {"sub", "iat", "nbf", "exp", "iss", "aud", "jti"} <= set(claims)


async def test_unknown_email_and_wrong_password_look_the_same(client: httpx.AsyncClient) -> None:
    """Both failures answer the same 401 body."""
    payload = await register(client)
    wrong = await login(client, payload["email"], "wrong-password-123")
    unknown = await login(client, f"nobody-{uuid.uuid4().hex}@example.com", "wrong-password-123")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


def forge(settings: Settings, **claims: object) -> str:
    """A token signed with the node's key, with chosen claims."""
    now = time.time()
    base = {
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + 900,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": uuid.uuid4().hex,
    }
    base.update(claims)
    return jwt.encode(
        base, settings.jwt_secret, algorithm="HS256", headers={"kid": settings.jwt_key_id}
    )


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_a_control_character_in_the_login_email_is_a_field_error(
    client: httpx.AsyncClient,
) -> None:
    """A NUL in the email (PostgreSQL cannot compare it) is 400 naming ``email``, not a 500."""
    response = await client.post(
        "/api/v1/auth/login", json={"email": "jane\u0000@example.com", "password": "x" * 12}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["fields"][0]["field"] == "email"


async def test_bad_access_tokens_are_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    """Tampered, alg none, expired, wrong audience/issuer and missing tokens all get 401."""
    user = await account(client)
    now = int(time.time())
    head, payload, signature = user.token.split(".")
    claims = jwt.decode(user.token, options={"verify_signature": False})
    tampered = (
        f"{head}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    )
    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{payload}."
    bad = {
        "tampered": tampered,
        "alg none": alg_none,
        "expired": forge(settings, sub=user.id, iat=now - 2000, nbf=now - 2000, exp=now - 1000),
        "wrong audience": forge(settings, sub=user.id, aud="someone-else"),
        "wrong issuer": forge(settings, sub=user.id, iss="evil"),
        "foreign key": jwt.encode(
            claims,
            "another-secret-of-enough-length-000000",
            algorithm="HS256",
            headers={"kid": "k1"},
        ),
        "garbage": "not.a.jwt",
    }
    for name, token in bad.items():
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await client.get("/api/v1/users/me")).status_code == 401
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    ).status_code == 401


async def test_forged_token_for_the_user_with_right_key_is_accepted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The verification accepts exactly what the key signs (control for the test above)."""
    user = await account(client)
    token = forge(settings, sub=user.id)
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def cookie_header(refresh: str, csrf: str = "t") -> dict[str, str]:
    """Explicit session cookies plus the matching CSRF header."""
    return {"Cookie": f"refresh_token={refresh}; csrf_token={csrf}", "X-CSRF-Token": csrf}


async def _refresh_cookie(client: httpx.AsyncClient, payload: dict[str, str]) -> str:
    response = await login(client, payload["email"], payload["password"])
    assert response.status_code == 200
    return response.cookies["refresh_token"]


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    """A rotated refresh token used again kills the whole family."""
    payload = await register(client)
    first = await _refresh_cookie(client, payload)
    client.cookies.clear()
    rotated = await client.post("/api/v1/auth/refresh", headers=cookie_header(first))
    assert rotated.status_code == 200
    assert rotated.json()["data"]["access_token"]
    second = rotated.cookies["refresh_token"]
    assert second != first
    client.cookies.clear()
    replay = await client.post("/api/v1/auth/refresh", headers=cookie_header(first))
    assert replay.status_code == 401
    after = await client.post("/api/v1/auth/refresh", headers=cookie_header(second))
    assert after.status_code == 401


async def test_a_reuse_racing_a_rotation_revokes_what_the_rotation_issued(
    client: httpx.AsyncClient,
) -> None:
    """Two refreshes of one token at once: one rotates, one is a reuse; nothing survives.

    The rotation's new token is stored after the reuse revoked the family's tokens at times;
    a token of a family with any revoked token is refused all the same.
    """
    payload = await register(client)
    for _ in range(10):
        token = await _refresh_cookie(client, payload)
        client.cookies.clear()
        answers = await asyncio.gather(
            *(client.post("/api/v1/auth/refresh", headers=cookie_header(token)) for _ in range(2))
        )
        client.cookies.clear()
        assert sorted(a.status_code for a in answers) == [200, 401]
        issued = next(a for a in answers if a.status_code == 200).cookies["refresh_token"]
        late = await client.post("/api/v1/auth/refresh", headers=cookie_header(issued))
        assert late.status_code == 401


async def test_other_families_survive_a_reuse(client: httpx.AsyncClient) -> None:
    """Reuse in one session does not log the user out of their other sessions."""
    payload = await register(client)
    laptop = await _refresh_cookie(client, payload)
    phone = await _refresh_cookie(client, payload)
    client.cookies.clear()
    await client.post("/api/v1/auth/refresh", headers=cookie_header(laptop))
    await client.post("/api/v1/auth/refresh", headers=cookie_header(laptop))
    client.cookies.clear()
    assert (
        await client.post("/api/v1/auth/refresh", headers=cookie_header(phone))
    ).status_code == 200


async def test_refresh_needs_the_csrf_header(client: httpx.AsyncClient) -> None:
    """Missing or wrong X-CSRF-Token: 403."""
    payload = await register(client)
    refresh = await _refresh_cookie(client, payload)
    client.cookies.clear()
    cookies = {"Cookie": f"refresh_token={refresh}; csrf_token=t"}
    assert (await client.post("/api/v1/auth/refresh", headers=cookies)).status_code == 403
    wrong = await client.post("/api/v1/auth/refresh", headers={**cookies, "X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "FORBIDDEN"
    assert (await client.post("/api/v1/auth/logout", headers=cookies)).status_code == 403


async def test_refresh_without_cookie_is_401(client: httpx.AsyncClient) -> None:
    """No refresh cookie: 401 (with a valid CSRF pair)."""
    client.cookies.clear()
    headers = {"X-CSRF-Token": "t", "Cookie": "csrf_token=t"}
    response = await client.post("/api/v1/auth/refresh", headers=headers)
    assert response.status_code == 401


async def test_logout_revokes_and_clears(client: httpx.AsyncClient) -> None:
    """Logout answers 204, clears cookies, and the refresh token stops working."""
    payload = await register(client)
    refresh = await _refresh_cookie(client, payload)
    client.cookies.clear()
    response = await client.post("/api/v1/auth/logout", headers=cookie_header(refresh))
    assert response.status_code == 204
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith("refresh_token=") and "Max-Age=0" in c for c in cleared)
    client.cookies.clear()
    assert (
        await client.post("/api/v1/auth/refresh", headers=cookie_header(refresh))
    ).status_code == 401


async def test_logout_without_session_is_still_204(client: httpx.AsyncClient) -> None:
    """Logging out twice is harmless."""
    client.cookies.clear()
    headers = {"X-CSRF-Token": "t", "Cookie": "csrf_token=t"}
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204


async def _enable_mfa(client: httpx.AsyncClient, user: Account) -> TotpDevice:
    setup = await client.post("/api/v1/auth/mfa/setup", headers=user.headers)
    assert setup.status_code == 200
    data = setup.json()["data"]
    assert data["otpauth_uri"].startswith("otpauth://totp/")
    device = TotpDevice(data["secret"])
    enabled = await client.post(
        "/api/v1/auth/mfa/enable", headers=user.headers, json={"code": device.next_code()}
    )
    assert enabled.status_code == 200 and enabled.json()["data"]["mfa_enabled"] is True
    return device


async def test_mfa_login_needs_a_fresh_code(client: httpx.AsyncClient) -> None:
    """With MFA on: no code or a used code -> MFA_REQUIRED; a fresh code logs in."""
    user = await account(client)
    device = await _enable_mfa(client, user)
    missing = await login(client, user.email, user.password)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "MFA_REQUIRED"
    code = device.next_code()
    assert (await login(client, user.email, user.password, totp_code=code)).status_code == 200
    replay = await login(client, user.email, user.password, totp_code=code)
    assert replay.json()["error"]["code"] == "MFA_REQUIRED"


async def test_the_code_that_enabled_mfa_cannot_log_in(client: httpx.AsyncClient) -> None:
    """A code is accepted once, the enabling one included."""
    user = await account(client)
    setup = await client.post("/api/v1/auth/mfa/setup", headers=user.headers)
    device = TotpDevice(setup.json()["data"]["secret"])
    code = device.next_code()
    await client.post("/api/v1/auth/mfa/enable", headers=user.headers, json={"code": code})
    again = await login(client, user.email, user.password, totp_code=code)
    assert again.json()["error"]["code"] == "MFA_REQUIRED"


async def test_mfa_enable_rejects_wrong_codes_and_states(client: httpx.AsyncClient) -> None:
    """Enable without setup, a wrong code, and setup when on are refused clearly."""
    user = await account(client)
    no_setup = await client.post(
        "/api/v1/auth/mfa/enable", headers=user.headers, json={"code": "123456"}
    )
    assert no_setup.status_code == 409
    await client.post("/api/v1/auth/mfa/setup", headers=user.headers)
    wrong = await client.post(
        "/api/v1/auth/mfa/enable", headers=user.headers, json={"code": "000000"}
    )
    assert wrong.status_code == 400
    user2 = await account(client)
    await _enable_mfa(client, user2)
    assert (await client.post("/api/v1/auth/mfa/setup", headers=user2.headers)).status_code == 409
    assert (
        await client.post("/api/v1/auth/mfa/enable", headers=user2.headers, json={"code": "123456"})
    ).status_code == 409  # a well-formed code: the documented 6-digit pattern comes first


async def test_mfa_disable_needs_password_and_code(client: httpx.AsyncClient) -> None:
    """Disable: wrong password 403, bad code 400 naming it (the session stands), then 200."""
    user = await account(client)
    device = await _enable_mfa(client, user)
    url = "/api/v1/auth/mfa/disable"
    wrong_pw = await client.post(
        url, headers=user.headers, json={"code": "000000", "password": "wrong-password-000"}
    )
    assert wrong_pw.status_code == 403
    bad_code = await client.post(
        url, headers=user.headers, json={"code": "000000", "password": user.password}
    )
    assert bad_code.status_code == 400, bad_code.text
    assert [f["field"] for f in bad_code.json()["error"]["details"]["fields"]] == ["code"]
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    done = await client.post(
        url, headers=user.headers, json={"code": device.next_code(), "password": user.password}
    )
    assert done.status_code == 200 and done.json()["data"]["mfa_enabled"] is False
    again = await client.post(
        url, headers=user.headers, json={"code": "000000", "password": user.password}
    )
    assert again.status_code == 409
    assert (await login(client, user.email, user.password)).status_code == 200


async def test_mfa_endpoints_need_a_token(client: httpx.AsyncClient) -> None:
    """MFA endpoints are for logged-in users."""
    assert (await client.post("/api/v1/auth/mfa/setup")).status_code == 401


async def test_staging_uses_host_prefixed_secure_cookie(
    tmp_path: object, pg_url: str, redis_prefix: str
) -> None:
    """Outside dev the refresh cookie is __Host-refresh with Secure."""
    from pathlib import Path

    from tests.fixtures.server import serve
    from tests.fixtures.services import REDIS_URL
    from tests.fixtures.settings import make_settings

    settings = make_settings(
        pg_url,
        REDIS_URL,
        redis_prefix + "staging:",
        Path(str(tmp_path)),
        env="staging",
        jwt_secret="s" * 40,
        data_encryption_key="d" * 40,
    )
    async with serve(settings) as node, httpx.AsyncClient(base_url=node.base_url) as http:
        payload = await register(http, password=PASSWORD)
        response = await login(http, payload["email"], payload["password"])
        cookies = response.headers.get_list("set-cookie")
        refresh = next(c for c in cookies if c.startswith("__Host-refresh="))
        assert "Secure" in refresh and "HttpOnly" in refresh and "Path=/" in refresh
        assert "strict-transport-security" in response.headers
