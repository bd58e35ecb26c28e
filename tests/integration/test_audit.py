"""Security events leave audit records: the event, the user id, the request id, nothing else.

Each scenario drives the REST API of a real node and reads the ``studybuddy.audit`` records
it logged, rendered as the JSON lines operators get: no email, password, token or code.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from server.observability.audit import AUDIT_LOGGER
from server.observability.logging import JsonFormatter
from server.security.tokens import hash_token
from server.store.base import utcnow
from server.store.models import AccountToken, TokenPurpose
from tests.factories.mfa import TotpDevice
from tests.factories.users import Account, account, login
from tests.fixtures.server import RunningServer

NEW_PASSWORD = "a-brand-new-passphrase-77"


@pytest.fixture
def audited(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Audit records captured (the logger is at INFO whatever the node's level)."""
    caplog.set_level("INFO", logger=AUDIT_LOGGER)
    return caplog


def records(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[dict[str, Any]]:
    """The audit records so far as JSON lines; none holds any of ``secrets``."""
    lines = [
        JsonFormatter().format(record) for record in caplog.records if record.name == AUDIT_LOGGER
    ]
    for line in lines:
        assert not any(secret in line for secret in secrets), line
    return [json.loads(line) for line in lines]


def events(found: list[dict[str, Any]], user: Account | None) -> list[tuple[str, str | None]]:
    """``(event, reason)`` of the user's records (of unknown users' when ``user`` is None)."""
    wanted = user.id if user is not None else None
    return [(r["audit"], r.get("reason")) for r in found if r["user_id"] == wanted]


async def test_sign_ins_carry_the_request_id_and_no_credentials(
    client: httpx.AsyncClient, audited: pytest.LogCaptureFixture
) -> None:
    """A success, a wrong password and an unknown email: one record each, request id kept."""
    user = await account(client)
    audited.clear()
    request_id = uuid.uuid4().hex
    ok = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password},
        headers={"X-Request-ID": request_id},
    )
    assert ok.status_code == 200
    assert (await login(client, user.email, "not-the-password-99")).status_code == 401
    assert (await login(client, "nobody-" + user.email, user.password)).status_code == 401
    found = records(audited, user.email, user.password, "not-the-password-99")
    assert events(found, user) == [("auth.sign_in", None), ("auth.sign_in_failed", "credentials")]
    assert events(found, None) == [("auth.sign_in_failed", "credentials")]
    assert found[0]["request_id"] == request_id and found[0]["logger"] == AUDIT_LOGGER


async def test_mfa_changes_and_a_missing_code_are_audited(
    client: httpx.AsyncClient, audited: pytest.LogCaptureFixture
) -> None:
    """Enabling MFA, a sign-in without the code, and disabling MFA."""
    user = await account(client)
    audited.clear()
    setup = await client.post("/api/v1/auth/mfa/setup", headers=user.headers)
    device = TotpDevice(setup.json()["data"]["secret"])
    code = device.next_code()
    enabled = await client.post(
        "/api/v1/auth/mfa/enable", headers=user.headers, json={"code": code}
    )
    assert enabled.status_code == 200
    assert (await login(client, user.email, user.password)).status_code == 401
    last = device.next_code()
    disabled = await client.post(
        "/api/v1/auth/mfa/disable",
        headers=user.headers,
        json={"code": last, "password": user.password},
    )
    assert disabled.status_code == 200
    found = records(audited, user.email, user.password, device.secret, code, last)
    assert events(found, user) == [
        ("auth.mfa_enabled", None),
        ("auth.sign_in_failed", "second_factor"),
        ("auth.mfa_disabled", None),
    ]


async def test_a_reused_refresh_token_is_audited(
    client: httpx.AsyncClient, audited: pytest.LogCaptureFixture
) -> None:
    """The second use of a rotated refresh token revokes the family and says so."""
    user = await account(client)
    signed_in = await login(client, user.email, user.password)
    first, csrf = signed_in.cookies["refresh_token"], signed_in.cookies["csrf_token"]
    headers = {"Cookie": f"refresh_token={first}; csrf_token={csrf}", "X-CSRF-Token": csrf}
    client.cookies.clear()
    assert (await client.post("/api/v1/auth/refresh", headers=headers)).status_code == 200
    client.cookies.clear()
    assert (await client.post("/api/v1/auth/refresh", headers=headers)).status_code == 401
    found = records(audited, first, csrf, user.password)
    assert ("auth.refresh_reused", None) in events(found, user)


async def test_password_change_reset_export_and_erasure_are_audited(
    client: httpx.AsyncClient, node: RunningServer, audited: pytest.LogCaptureFixture
) -> None:
    """Each of them leaves one record naming the user by id only."""
    user = await account(client)
    audited.clear()
    changed = await client.put(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": user.password, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200
    token = uuid.uuid4().hex
    async with node.db.session() as session, session.begin():
        session.add(
            AccountToken(
                user_id=uuid.UUID(user.id),
                purpose=TokenPurpose.RESET_PASSWORD.value,
                token_hash=hash_token(token),
                email=user.email,
                expires_at=utcnow() + timedelta(minutes=30),
            )
        )
    reset = await client.post(
        "/api/v1/auth/password/reset", json={"token": token, "new_password": user.password}
    )
    assert reset.status_code == 200
    signed_in = (await login(client, user.email, user.password)).json()["data"]
    fresh = {"Authorization": f"Bearer {signed_in['access_token']}"}
    assert (await client.get("/api/v1/users/me/export", headers=fresh)).status_code == 200
    gone = await client.request(
        "DELETE", "/api/v1/users/me", headers=fresh, json={"password": user.password}
    )
    assert gone.status_code == 204
    found = records(audited, user.email, user.password, NEW_PASSWORD, token, user.username)
    assert events(found, user) == [
        ("auth.password_changed", None),
        ("auth.password_reset", None),
        ("auth.sign_in", None),
        ("account.exported", None),
        ("account.erased", None),
    ]
