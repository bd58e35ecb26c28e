"""REST load scenario for Locust: ``locust -f loadtests/locustfile.py --host http://127.0.0.1:8000``.

Each simulated student registers, joins a shared public group, then reads and writes as
people do: list groups, page history, post, check unread counts. Only loopback hosts are
accepted. Install with ``pip install -e '.[load]'`` (kept out of the test environment).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task

GROUP: dict[str, str] = {}


@events.init.add_listener
def only_loopback(environment: Any, **_kwargs: Any) -> None:
    """Refuse to load anything but 127.0.0.1 / localhost."""
    host = urlsplit(environment.host or "").hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(f"load tests only target loopback, not {host!r}")


class Student(HttpUser):
    """A study-group member using the REST API."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        """Register, log in and join the shared group."""
        tag = uuid.uuid4().hex[:10]
        body = {
            "email": f"l{tag}@load.example",
            "username": f"l_{tag}",
            "password": "locust-passphrase-1",
        }
        self.client.post("/api/v1/auth/register", json=body)
        login = self.client.post(
            "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}
        )
        self.headers = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
        if "id" not in GROUP:
            created = self.client.post(
                "/api/v1/study-groups",
                headers=self.headers,
                json={"name": "Locust hall", "visibility": "public"},
            )
            GROUP["id"] = created.json()["data"]["id"]
        else:
            self.client.post(
                f"/api/v1/study-groups/{GROUP['id']}/join",
                headers=self.headers,
                name="/study-groups/[id]/join",
            )
        self.sent = 0

    @task(4)
    def read_history(self) -> None:
        """Page through recent messages."""
        self.client.get(
            f"/api/v1/study-groups/{GROUP['id']}/messages?page_size=50",
            headers=self.headers,
            name="/study-groups/[id]/messages",
        )

    @task(2)
    def post_message(self) -> None:
        """Write a message."""
        self.sent += 1
        body = {"body": f"question {self.sent}", "client_msg_id": f"{id(self)}-{self.sent}"}
        self.client.post(
            f"/api/v1/study-groups/{GROUP['id']}/messages",
            headers=self.headers,
            json=body,
            name="/study-groups/[id]/messages POST",
        )

    @task(2)
    def list_groups(self) -> None:
        """Browse groups."""
        self.client.get(
            "/api/v1/study-groups?sort=-member_count", headers=self.headers, name="/study-groups"
        )

    @task(1)
    def unread(self) -> None:
        """Check unread counts."""
        self.client.get("/api/v1/users/me/unread", headers=self.headers)
