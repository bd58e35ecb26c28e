"""``LoginFlood``: one address hammering the login, which must answer 429 (contract section 3).

Spreading people over their own addresses keeps the per-IP auth bucket (5 requests a
minute) out of the measurements; this user checks the limit is still there. Once a minute
it fires up to eight logins in a row from one address (wrong password, unknown account) and
expects a 429 among them; a round cut short by the end of the run, or so slow (over 36 s,
an overloaded target) that the bucket refilled meanwhile, is not counted. Its
requests are named ``... [flood]``: their 401s and 429s are the check working, so they are
not errors and count toward no latency threshold; a round without a 429 fails the run
(``login flood limited`` in the statistics, and the verdict).
"""

from __future__ import annotations

import time
from typing import Any

from locust import HttpUser, constant, task
from urllib3 import PoolManager

from loadtests.scenarios.base import API
from loadtests.scenarios.people import FLOOD_SOURCE
from loadtests.verdict import FLOOD_TAG

ATTEMPTS = 8
BURST, REFILL_S = 5, 12.0
"""The contract's auth bucket: 5 a minute, so a burst of 5 and one more every 12 s."""
CONCLUSIVE_S = (ATTEMPTS - BURST) * REFILL_S
"""Eight attempts within 36 s must meet a 429; slower ones (an overloaded run) prove nothing."""
ROUNDS = {"rounds": 0, "limited": 0, "inconclusive": 0}
"""The run's conclusive flood rounds, how many met a 429, and the rounds too slow to tell."""


class LoginFlood(HttpUser):
    """A single address trying passwords as fast as it can."""

    fixed_count = 1
    wait_time = constant(60)

    def __init__(self, environment: Any) -> None:
        self.pool_manager = PoolManager(source_address=(FLOOD_SOURCE, 0), maxsize=1)
        super().__init__(environment)

    @task
    def flood(self) -> None:
        """Up to eight logins in a row; the bucket of five must run out."""
        started = time.perf_counter()
        for attempt in range(ATTEMPTS):
            if self._attempt(attempt):
                ROUNDS["rounds"] += 1
                ROUNDS["limited"] += 1
                self._report(started, None)
                return
        if time.perf_counter() - started > CONCLUSIVE_S:
            ROUNDS["inconclusive"] += 1
            return
        ROUNDS["rounds"] += 1
        self._report(started, AssertionError(f"no 429 after {ATTEMPTS} logins from one address"))

    def _attempt(self, attempt: int) -> bool:
        body = {"email": "flood@loadtest.invalid", "password": f"guess-number-{attempt:04d}"}
        with self.client.post(
            f"{API}/auth/login",
            json=body,
            name=f"{API}/auth/login {FLOOD_TAG}",
            catch_response=True,
        ) as response:
            if response.status_code in (401, 429):
                response.success()
            return bool(response.status_code == 429)

    def _report(self, started: float, exc: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="CHECK",
            name=f"login flood limited {FLOOD_TAG}",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )
