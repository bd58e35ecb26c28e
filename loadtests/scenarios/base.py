"""The base of every simulated person: a seeded identity, its own source address, a session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faker import Faker
from locust import HttpUser
from locust.exception import StopUser
from urllib3 import PoolManager

from loadtests.scenarios.people import SHARED_SOURCE, Person, roster

API = "/api/v1"
TOKEN_REFRESH_S = 600.0
"""Refresh the access token (15 min) after 10 min, as a client would."""
FAKE = Faker()
"""One generator for every user of the process (Faker instances are costly to build)."""
FAKE.seed_instance(2026)


ARRIVING = [0]
"""Users still in ``on_start`` (logging in, connecting): the ramp-up lasts while any are."""


@contextmanager
def arriving() -> Iterator[None]:
    """Count this user as arriving for the duration of the block."""
    ARRIVING[0] += 1
    try:
        yield
    finally:
        ARRIVING[0] -= 1


class SeededUser(HttpUser):
    """An ``HttpUser`` playing one seeded person, from that person's own loopback address."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        self.person: Person = roster(environment).claim()
        single = getattr(environment.parsed_options, "single_source", False)
        self.source = SHARED_SOURCE if single else self.person.source
        self.pool_manager = PoolManager(source_address=(self.source, 0), maxsize=2)
        super().__init__(environment)
        self.token = ""
        self.token_at = 0.0

    @property
    def access_token(self) -> str:
        """The access token, refreshed first when it is getting old."""
        if time.monotonic() - self.token_at > TOKEN_REFRESH_S:
            self.refresh()
        return self.token

    @property
    def auth(self) -> dict[str, str]:
        """The bearer header."""
        return {"Authorization": f"Bearer {self.access_token}"}

    def log_in(self) -> None:
        """Log in as this person; a failed login ends this simulated user (it is an error).

        Raises:
            StopUser: the login was refused.
        """
        body = {"email": self.person.email, "password": self.person.password}
        with self.client.post(f"{API}/auth/login", json=body, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"login refused: {response.status_code} {response.text[:200]}")
                raise StopUser
            self._took(response.json())

    def refresh(self) -> bool:
        """Rotate the refresh cookie for a new access token (CSRF header from its cookie)."""
        csrf = self.client.cookies.get("csrf_token", "")
        with self.client.post(
            f"{API}/auth/refresh", headers={"X-CSRF-Token": csrf}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"refresh refused: {response.status_code} {response.text[:200]}")
                self.token_at = time.monotonic()  # retry after the next interval, not at once
                return False
            self._took(response.json())
            return True

    def _took(self, answer: dict[str, Any]) -> None:
        self.token = answer["data"]["access_token"]
        self.token_at = time.monotonic()
