"""Account emails end to end: a node, a worker process, and a real SMTP server.

The worker sends over SMTP what requests only queued: verification links at registration,
reset links on ``forgot``. Links work once, expire, and are refused for the wrong purpose;
``forgot`` answers an unknown address exactly as a known one and sends nothing; a reset does
what a password change does; an SMTP outage ends in a dead letter that the admin command
replays once the server is back.
"""

from __future__ import annotations

import html
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from server.store.base import utcnow
from server.store.models import AccountToken, DeadLetter
from server.store.users import get_user_by_email
from tests.factories.mfa import TotpDevice
from tests.factories.users import account, login, user_payload
from tests.fixtures.notify_stack import Stack, eventually, notify_stack, token_of
from tests.fixtures.smtp_server import Received
from tests.fixtures.wsclient import socket

pytestmark = pytest.mark.slow
AUTH = "/api/v1/auth"
NEW_PASSWORD = "a-brand-new-passphrase-77"


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Node, worker and SMTP server for this module."""
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    async with notify_stack(pg_url, prefix, tmp_path_factory.mktemp("account-emails")) as made:
        yield made


async def _verification(stack: Stack, email: str, count: int = 1) -> Received:
    return (await stack.smtp.wait_for(email, count))[count - 1]


async def _forgot(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post(f"{AUTH}/password/forgot", json={"email": email})


async def _reset(http: httpx.AsyncClient, token: str, **extra: Any) -> httpx.Response:
    body = {"token": token, "new_password": NEW_PASSWORD, **extra}
    return await http.post(f"{AUTH}/password/reset", json=body)


def _token_field(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return [problem["field"] for problem in error["details"]["fields"]]


async def test_registration_email_verifies_the_address_once(stack: Stack) -> None:
    """The emailed link flips email_verified; the same token again is a 400 naming token."""
    user = await account(stack.http)
    me = await stack.http.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["data"]["email_verified"] is False
    email = await _verification(stack, user.email)
    assert email.message["Subject"] == "Confirm your email address for StudyBuddy"
    assert "https://app.studybuddy.test/verify-email?token=" in email.text
    assert email.message["List-Unsubscribe"] == (
        "<https://app.studybuddy.test/settings/notifications>"
    )
    assert email.message["Message-ID"].endswith("@studybuddy.test>")
    assert email.message.is_multipart()
    token = token_of(email)
    verified = await stack.http.post(f"{AUTH}/email/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["data"]["email_verified"] is True
    assert verified.json()["data"]["id"] == user.id
    me = await stack.http.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["data"]["email_verified"] is True
    again = await stack.http.post(f"{AUTH}/email/verify", json={"token": token})
    assert _token_field(again) == ["token"]


async def test_resend_sends_a_new_link_and_none_once_verified(stack: Stack) -> None:
    """202 and a second link; after verifying, resend still answers 202 but sends nothing."""
    user = await account(stack.http)
    await _verification(stack, user.email)
    resent = await stack.http.post(f"{AUTH}/email/resend", headers=user.headers)
    assert resent.status_code == 202, resent.text
    second = await _verification(stack, user.email, 2)
    assert (
        await stack.http.post(f"{AUTH}/email/verify", json={"token": token_of(second)})
    ).is_success
    assert await stack.node.domain.accounts.send_verification(uuid.UUID(user.id)) is False
    assert await stack.node.domain.accounts.send_verification(uuid.uuid4()) is False
    assert len(stack.smtp.to(user.email)) == 2


async def test_reset_link_works_once_and_ends_every_session(stack: Stack) -> None:
    """Reset: new password works, old one not, old tokens and sockets end, link used once."""
    user = await account(stack.http)
    other = await login(stack.http, user.email, user.password)  # a second session
    async with socket(f"{stack.node.ws_url}/api/v1/ws", user.token) as ws:
        answer = await _forgot(stack.http, user.email.upper())
        assert answer.status_code == 202, answer.text
        email = (await stack.smtp.wait_for(user.email, 2))[1]
        assert email.message["Subject"] == "Reset your StudyBuddy password"
        assert "https://app.studybuddy.test/reset-password?token=" in email.text
        token = token_of(email)
        reset = await _reset(stack.http, token)
        assert reset.status_code == 200, reset.text
        assert reset.json()["data"]["id"] == user.id
        assert await ws.closed_with() == 4001
    assert (await stack.http.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    refresh_cookie = {"refresh_token": other.cookies["refresh_token"]}
    csrf = other.cookies["csrf_token"]
    async with httpx.AsyncClient(base_url=stack.node.base_url, cookies=refresh_cookie) as jar:
        jar.cookies.set("csrf_token", csrf)
        refreshed = await jar.post(f"{AUTH}/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 401
    assert (await login(stack.http, user.email, user.password)).status_code == 401
    assert (await login(stack.http, user.email, NEW_PASSWORD)).status_code == 200
    assert _token_field(await _reset(stack.http, token)) == ["token"]


async def test_a_newer_reset_request_voids_the_older_link(stack: Stack) -> None:
    """Two forgot requests: only the second link works."""
    user = await account(stack.http)
    await _forgot(stack.http, user.email)
    first = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    await _forgot(stack.http, user.email)
    second = token_of((await stack.smtp.wait_for(user.email, 3))[2])
    assert _token_field(await _reset(stack.http, first)) == ["token"]
    assert (await _reset(stack.http, second)).status_code == 200


async def test_a_password_change_voids_a_reset_link_sent_before(stack: Stack) -> None:
    """A reset link in an old email cannot set a password after the user changed it."""
    user = await account(stack.http)
    await _forgot(stack.http, user.email)
    token = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    changed = await stack.http.put(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": user.password, "new_password": "a-newly-chosen-passphrase"},
    )
    assert changed.status_code == 200, changed.text
    assert _token_field(await _reset(stack.http, token)) == ["token"]
    assert (await login(stack.http, user.email, "a-newly-chosen-passphrase")).status_code == 200


async def test_an_expired_reset_token_fails(stack: Stack) -> None:
    """Past its 30 minutes the link is a 400 naming token."""
    user = await account(stack.http)
    await _forgot(stack.http, user.email)
    token = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    async with stack.node.db.session() as session, session.begin():
        await session.execute(
            update(AccountToken)
            .where(AccountToken.user_id == uuid.UUID(user.id))
            .values(expires_at=utcnow())
        )
    assert _token_field(await _reset(stack.http, token)) == ["token"]


async def test_reset_with_mfa_needs_the_code_and_keeps_the_link_until_then(stack: Stack) -> None:
    """MFA on: no code is 401 MFA_REQUIRED and the link still works with a code."""
    user = await account(stack.http)
    setup = await stack.http.post(f"{AUTH}/mfa/setup", headers=user.headers)
    device = TotpDevice(setup.json()["data"]["secret"])
    enabled = await stack.http.post(
        f"{AUTH}/mfa/enable", headers=user.headers, json={"code": device.next_code()}
    )
    assert enabled.status_code == 200, enabled.text
    await _forgot(stack.http, user.email)
    token = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    missing = await _reset(stack.http, token)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "MFA_REQUIRED"
    assert (await _reset(stack.http, token, totp_code=device.next_code())).status_code == 200


async def test_a_weak_new_password_is_refused_and_keeps_the_link(stack: Stack) -> None:
    """The registration rules apply (400 on new_password); the token is not spent."""
    user = await account(stack.http)
    await _forgot(stack.http, user.email)
    token = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    weak = await stack.http.post(
        f"{AUTH}/password/reset", json={"token": token, "new_password": "password1234"}
    )
    assert _token_field(weak) == ["new_password"]
    assert (await _reset(stack.http, token)).status_code == 200


async def test_tokens_of_the_wrong_kind_are_refused(stack: Stack) -> None:
    """A verification token cannot reset a password, nor a reset token verify an address."""
    user = await account(stack.http)
    verification = token_of(await _verification(stack, user.email))
    await _forgot(stack.http, user.email)
    reset = token_of((await stack.smtp.wait_for(user.email, 2))[1])
    assert _token_field(await _reset(stack.http, verification)) == ["token"]
    wrong = await stack.http.post(f"{AUTH}/email/verify", json={"token": reset})
    assert _token_field(wrong) == ["token"]
    made_up = await stack.http.post(f"{AUTH}/email/verify", json={"token": "x" * 43})
    assert _token_field(made_up) == ["token"]
    assert (await _reset(stack.http, reset)).status_code == 200  # still unused


async def test_forgot_for_an_unknown_address_sends_nothing_and_answers_the_same(
    stack: Stack,
) -> None:
    """Same status and body, about the same time; only the known address gets an email."""
    user = await account(stack.http)
    await _verification(stack, user.email)
    ghost = f"nobody.{uuid.uuid4().hex[:8]}@example.com"
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    answers = {}
    for _ in range(5):
        for name, address in (("unknown", ghost), ("known", user.email)):
            started = time.perf_counter()
            answer = await _forgot(stack.http, address)
            timings[name].append(time.perf_counter() - started)
            answers[name] = (answer.status_code, answer.json())
    assert answers["known"] == answers["unknown"]
    assert answers["known"][0] == 202
    known, unknown = (statistics.median(timings[name]) for name in ("known", "unknown"))
    assert abs(known - unknown) < max(0.05, 0.5 * min(known, unknown)), timings
    await stack.smtp.wait_for(user.email, 6)  # the known address's five links arrived ...
    assert stack.smtp.to(ghost) == []  # ... and the unknown one, queued before each, got none


@pytest.mark.parametrize(
    "address",
    ["a" * 250 + "@example.com", "j" * 65 + "@example.com", "not-an-address", "eve@localhost"],
)
async def test_bad_addresses_are_a_400_on_email_and_send_nothing(
    stack: Stack, address: str
) -> None:
    """Oversized and malformed addresses: VALIDATION_ERROR naming email, no email queued."""
    before = len(stack.smtp.received)
    for path, body in (
        ("/password/forgot", {"email": address}),
        ("/register", {**user_payload(), "email": address}),
    ):
        answer = await stack.http.post(f"{AUTH}{path}", json=body)
        assert _token_field(answer) == ["email"]
    assert len(stack.smtp.received) == before


async def test_a_display_name_cannot_inject_headers(stack: Stack) -> None:
    """CR/LF in a display name stays inside the To header: no Bcc, one recipient."""
    payload = user_payload(display_name="Eve\r\nBcc: victim@example.com\nX-Evil: 1")
    registered = await stack.http.post(f"{AUTH}/register", json=payload)
    assert registered.status_code == 201, registered.text
    email = await _verification(stack, payload["email"])
    assert email.rcpt_tos == [payload["email"]]
    assert email.message["Bcc"] is None
    assert email.message["X-Evil"] is None
    assert "\n" not in str(email.message["To"])
    assert "Eve Bcc: victim@example.com X-Evil: 1" in str(email.message["To"])
    assert stack.smtp.to("victim@example.com") == []


async def test_notification_emails_go_only_to_verified_addresses(stack: Stack) -> None:
    """Both get the invite notification; only the verified one gets its email."""
    owner = await account(stack.http)
    unverified = await account(stack.http)
    verified = await account(stack.http)
    token = token_of(await _verification(stack, verified.email))
    assert (await stack.http.post(f"{AUTH}/email/verify", json={"token": token})).is_success
    await _verification(stack, unverified.email)
    group = await stack.http.post(
        "/api/v1/study-groups",
        headers=owner.headers,
        json={"name": "Group <b>&</b> friends\nBcc: victim@example.com", "visibility": "private"},
    )
    group_id = group.json()["data"]["id"]
    for invitee in (unverified, verified):
        sent = await stack.http.post(
            f"/api/v1/study-groups/{group_id}/invites",
            headers=owner.headers,
            json={"user_id": invitee.id},
        )
        assert sent.status_code == 201, sent.text
    email = (await stack.smtp.wait_for(verified.email, 2))[1]
    me = await stack.http.get("/api/v1/users/me", headers=owner.headers)
    inviter = html.unescape(me.json()["data"]["display_name"])
    assert email.message["Subject"] == (
        f"{inviter} invited you to Group <b>&</b> friends Bcc: victim@example.com"
    )
    assert re.search(r"before \w{3} \d{2} \w{3} \d{4}, \d{2}:\d{2} UTC", email.text), email.text
    assert "https://app.studybuddy.test/invites\r\n" in email.text  # not the group's page
    assert email.message["Bcc"] is None
    assert email.rcpt_tos == [verified.email]
    assert "Group &lt;b&gt;&amp;&lt;/b&gt; friends" in email.html
    assert "Group <b>&</b> friends" in email.text
    await eventually(lambda: stack.notifications(unverified.id, "invite.received"))
    notes = await stack.notifications(unverified.id, "invite.received")
    assert [note.email_status for note in notes] == [None]
    assert len(stack.smtp.to(unverified.email)) == 1  # the verification link only


async def test_smtp_down_dead_letters_then_the_admin_command_replays(stack: Stack) -> None:
    """Retried, dead after 3 attempts with its last error, replayed once SMTP is back."""
    stack.smtp.stop()
    try:
        payload = user_payload()
        assert (await stack.http.post(f"{AUTH}/register", json=payload)).status_code == 201
        letters = await eventually(lambda: _letters_for(stack, payload["email"]), timeout=30)
    finally:
        stack.smtp.start()
    (letter,) = letters
    assert letter.attempts == 3
    assert "SMTP 127.0.0.1" in letter.last_error
    listed = await stack.admin("dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(letter.id) in listed.stdout
    shown = await stack.admin("dlq", "show", str(letter.id))
    assert '"task": "email.verification"' in shown.stdout
    replayed = await stack.admin("dlq", "replay", str(letter.id))
    assert replayed.returncode == 0, replayed.stderr
    email = await _verification(stack, payload["email"])
    assert token_of(email)
    again = await stack.admin("dlq", "replay", str(letter.id))
    assert again.returncode == 1
    assert "replayed already" in again.stderr
    purged = await stack.admin("dlq", "purge", "--replayed")
    assert purged.returncode == 0
    assert (await stack.admin("dlq", "show", str(letter.id))).returncode == 1


async def _letters_for(stack: Stack, email: str) -> list[DeadLetter]:
    """Dead letters of the verification email of the account with ``email``."""
    async with stack.node.db.session() as session:
        user = await get_user_by_email(session, email)
    if user is None:
        return []
    letters = await stack.dead_letters("email.verification")
    return [letter for letter in letters if letter.args == [str(user.id)]]
