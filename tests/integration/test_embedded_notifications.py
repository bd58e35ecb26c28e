"""The README's walk-through on the embedded default: one node process, no Redis, no worker.

As ``make run`` starts it (SQLite, in-process jobs and schedule), with a one-second tick:
register, open the verification ``.eml`` in ``MAIL_DIR``, verify, forget the password and
reset it from the emailed link, get a due-soon reminder and a mention.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories.users import user_payload
from tests.fixtures.processes import NodeProcess, migrate

pytestmark = pytest.mark.slow
TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Path]]:
    """A node with a SQLite file and a mail folder, ticking every second."""
    folder = tmp_path_factory.mktemp("embedded-mail")
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'studybuddy.db'}",
        "MEDIA_DIR": str(folder / "media"),
        "MAIL_DIR": str(folder / "mail"),
        "REDIS_URL": "",
        "BCRYPT_ROUNDS": "4",
        "SCHEDULER_TICK_S": "1",
        "RATE_LIMIT_AUTH": "1000/60",
        "LOG_LEVEL": "INFO",
    }
    migrate(env)
    node = NodeProcess(env).start(folder / "node.log")
    yield node, folder / "mail"
    node.stop()


def _emails(mail: Path, address: str, count: int, timeout: float = 20) -> list[Any]:
    """Wait until ``count`` .eml files are addressed to ``address``; return them parsed."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(mail.glob("*.eml"))
            if mail.exists()
        ]
        mine = [message for message in found if address in str(message["To"])]
        if len(mine) >= count:
            return mine
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(mine)} of {count} emails to {address}")
        time.sleep(0.1)


def _token(message: Any) -> str:
    found = TOKEN.search(message.get_body(preferencelist=("plain",)).get_content())
    assert found is not None
    return found.group(1)


def _account(http: httpx.Client, mail: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Register, verify from the .eml, log in."""
    payload = user_payload()
    assert http.post("/api/v1/auth/register", json=payload).status_code == 201
    (email,) = _emails(mail, payload["email"], 1)
    verified = http.post("/api/v1/auth/email/verify", json={"token": _token(email)})
    assert verified.json()["data"]["email_verified"] is True
    token = http.post(
        "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
    ).json()["data"]["access_token"]
    return payload, {"Authorization": f"Bearer {token}"}


def _wait_for(http: httpx.Client, headers: dict[str, str], kind: str) -> list[Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = http.get(
            "/api/v1/notifications", headers=headers, params={"filter[kind]": kind}
        ).json()["data"]
        if found:
            return list(found)
        time.sleep(0.2)
    raise TimeoutError(kind)


def test_the_walk_through_works_with_the_node_alone(embedded: tuple[NodeProcess, Path]) -> None:
    """Verification, reset, a due-soon reminder and a mention, with emails in MAIL_DIR."""
    node, mail = embedded
    with httpx.Client(base_url=node.base_url, timeout=15) as http:
        ada, ada_auth = _account(http, mail)
        bob, bob_auth = _account(http, mail)
        assert (
            http.post("/api/v1/auth/password/forgot", json={"email": ada["email"]}).status_code
            == 202
        )
        reset_email = _emails(mail, ada["email"], 2)[1]
        reset = http.post(
            "/api/v1/auth/password/reset",
            json={"token": _token(reset_email), "new_password": "a-fresh-passphrase-99"},
        )
        assert reset.status_code == 200, reset.text
        ada_auth = {
            "Authorization": "Bearer "
            + http.post(
                "/api/v1/auth/login",
                json={"email": ada["email"], "password": "a-fresh-passphrase-99"},
            ).json()["data"]["access_token"]
        }
        group = http.post(
            "/api/v1/study-groups",
            headers=ada_auth,
            json={"name": "Walk-through", "visibility": "public"},
        ).json()["data"]
        assert http.post(f"/api/v1/study-groups/{group['id']}/join", headers=bob_auth).is_success
        due = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        created = http.post(
            f"/api/v1/study-groups/{group['id']}/assignments",
            headers=ada_auth,
            json={"title": "Read chapter 3", "due_at": due},
        )
        assert created.status_code == 201, created.text
        (reminder,) = _wait_for(http, bob_auth, "assignment.due_soon")
        assert reminder["data"]["title"] == "Read chapter 3"
        posted = http.post(
            f"/api/v1/study-groups/{group['id']}/messages",
            headers=ada_auth,
            json={"body": f"@{bob['username']} see the reading", "client_msg_id": "walk-1"},
        )
        assert posted.status_code == 201, posted.text
        (mention,) = _wait_for(http, bob_auth, "mention")
        assert mention["data"]["id"] == posted.json()["data"]["id"]
        subjects = [str(message["Subject"]) for message in _emails(mail, bob["email"], 3)]
        assert subjects[0] == "Confirm your email address for StudyBuddy"
        assert "Due soon: Read chapter 3" in subjects
        assert [s for s in subjects if s.endswith(" mentioned you in Walk-through")], subjects
