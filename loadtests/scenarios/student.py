"""``Student``: the REST journey of a study evening, with Faker data.

Logs in as a seeded person from their own address, then mostly reads (groups, history,
unread counts), sometimes writes (a message, a read marker, a profile edit, joining a
public group), refreshes the session now and then (CSRF header from the ``csrf_token``
cookie) and exports their data at most once. Weights are per task; about 15 requests a
minute per student, well under the 100/min per-user limit, as a person clicking would be.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from locust import between, task

from loadtests.scenarios.base import API, FAKE, SeededUser, arriving
from server.admin.seed_plan import SUBJECTS

GROUPS = f"{API}/study-groups"
REFRESH_EVERY_S = 120.0
EXPORT_AFTER_S = 60.0
SORTS = ("-member_count", "name", "-created_at")


class Student(SeededUser):
    """A person browsing, reading and writing through the REST API."""

    weight = 3
    wait_time = between(2, 6)

    def on_start(self) -> None:
        """Log in, look at one's account and one's groups."""
        self.started = time.monotonic()
        self.exported = False
        self.mine: list[str] = [str(group) for group in self.person.groups]
        self.seen: dict[str, int] = {}
        self.public: list[str] = []
        with arriving():
            self.log_in()
            self.client.get(f"{API}/users/me", headers=self.auth)
            self.my_groups()

    # -- reads ----------------------------------------------------------------------------

    @task(8)
    def browse_groups(self) -> None:
        """A page of the group directory; remembers public groups one could join."""
        params = {"page": random.randint(1, 3), "page_size": 20, "sort": random.choice(SORTS)}
        rows = self._list(GROUPS, params, f"{GROUPS}?page")
        self.public = [row["id"] for row in rows if row.get("role") is None]

    @task(4)
    def search_groups(self) -> None:
        """Search the directory by subject or a word."""
        term = random.choice([*SUBJECTS, FAKE.word()])
        self._list(GROUPS, {"search": term[:12]}, f"{GROUPS}?search")

    @task(2)
    def my_groups(self) -> None:
        """The groups one is in."""
        mine = {"filter[member]": "me", "page_size": 100}
        rows = self._list(GROUPS, mine, f"{GROUPS}?filter[member]=me")
        if rows:
            self.mine = [row["id"] for row in rows]

    @task(3)
    def view_group(self) -> None:
        """One group's page."""
        self.client.get(f"{GROUPS}/{self._pick_group()}", headers=self.auth, name=f"{GROUPS}/[id]")

    @task(2)
    def members(self) -> None:
        """Who is in one of my groups."""
        self.client.get(
            f"{GROUPS}/{self._pick_group()}/members",
            headers=self.auth,
            name=f"{GROUPS}/[id]/members",
        )

    @task(8)
    def history(self) -> None:
        """The newest messages of a group, sometimes the page before."""
        group = self._pick_group()
        params: dict[str, Any] = {"page_size": 50}
        if random.random() < 0.3:
            params["page"] = 2
        rows = self._list(f"{GROUPS}/{group}/messages", params, f"{GROUPS}/[id]/messages")
        if rows:
            self.seen[group] = max(self.seen.get(group, 0), *(row["seq"] for row in rows))

    @task(5)
    def unread(self) -> None:
        """Unread counts of every group."""
        with self.client.get(
            f"{API}/users/me/unread", headers=self.auth, catch_response=True
        ) as response:
            if response.status_code == 200:
                for row in response.json()["data"]:
                    self.seen[row["group_id"]] = row["last_seq"]

    @task(2)
    def me(self) -> None:
        """One's own account."""
        self.client.get(f"{API}/users/me", headers=self.auth)

    @task(1)
    def export(self) -> None:
        """Export one's data (GDPR), once, a while into the evening."""
        if self.exported or time.monotonic() - self.started < EXPORT_AFTER_S:
            return
        self.exported = True
        self.client.get(f"{API}/users/me/export", headers=self.auth)

    # -- writes ---------------------------------------------------------------------------

    @task(3)
    def post(self) -> None:
        """Write a message to one of my groups."""
        body = {"body": FAKE.paragraph(nb_sentences=2), "client_msg_id": uuid.uuid4().hex}
        self.client.post(
            f"{GROUPS}/{self._pick_group()}/messages",
            json=body,
            headers=self.auth,
            name=f"{GROUPS}/[id]/messages",
        )

    @task(2)
    def mark_read(self) -> None:
        """Mark a group read up to the newest message seen."""
        readable = [group for group, seq in self.seen.items() if seq > 0 and group in self.mine]
        if not readable:
            return
        group = random.choice(readable)
        self.client.put(
            f"{GROUPS}/{group}/read",
            json={"seq": self.seen[group]},
            headers=self.auth,
            name=f"{GROUPS}/[id]/read",
        )

    @task(1)
    def join(self) -> None:
        """Join a public group found while browsing."""
        if not self.public:
            return
        group = self.public.pop(random.randrange(len(self.public)))
        with self.client.post(
            f"{GROUPS}/{group}/join",
            headers=self.auth,
            name=f"{GROUPS}/[id]/join",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                self.mine.append(group)

    @task(1)
    def edit_profile(self) -> None:
        """Change one's display name or bio."""
        change = random.choice([{"bio": FAKE.sentence(nb_words=12)}, {"display_name": FAKE.name()}])
        self.client.patch(f"{API}/users/me", json=change, headers=self.auth)

    @task(1)
    def keep_session(self) -> None:
        """Rotate the refresh token, at most every two minutes (the auth bucket is 5/min)."""
        if time.monotonic() - self.token_at >= REFRESH_EVERY_S:
            self.refresh()

    # -- helpers --------------------------------------------------------------------------

    def _pick_group(self) -> str:
        return random.choice(self.mine)

    def _list(self, url: str, params: dict[str, Any], name: str) -> list[dict[str, Any]]:
        with self.client.get(
            url, params=params, headers=self.auth, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return []
            rows: list[dict[str, Any]] = response.json()["data"]
            return rows
