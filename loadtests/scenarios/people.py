"""Who each simulated user is: a seeded person, with a loopback source address of their own.

Every Locust user, whatever its class, takes the next seeded person (``user<i>@loadtest.invalid``,
see ``server/admin/seed_plan.py``) and binds all its connections to a source address of its
own in 127.0.0.0/8 (person ``i`` -> ``127.1.x.y``). The target then sees one address per
simulated person, so the per-IP auth bucket (5/min, contract section 3) limits each person as
it would a real one, and stays in force. Through the local proxy the address travels in
``X-Forwarded-For``; the nodes trust the proxy (``TRUSTED_PROXIES``).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from server.admin import seed_plan
from server.admin.seed_plan import SeedPlan

logger = logging.getLogger(__name__)

FIRST_SOURCE = ipaddress.IPv4Address("127.1.0.0")
HOSTS_PER_BLOCK = 250
"""Addresses used per /24 (``.1`` to ``.250``), avoiding ``.0`` and ``.255``."""
FLOOD_SOURCE = "127.0.0.9"
"""The single address the login flood check uses (no person has it)."""
SHARED_SOURCE = "127.0.0.8"
"""Everyone's address with ``--single-source``: the mistake the spreading avoids."""


@dataclass(frozen=True, slots=True)
class Person:
    """One seeded person, as a simulated user plays them."""

    index: int
    groups: tuple[uuid.UUID, ...]

    @property
    def email(self) -> str:
        """Login email."""
        return seed_plan.email(self.index)

    @property
    def password(self) -> str:
        """Login password (the same for every seeded person)."""
        return seed_plan.PASSWORD

    @property
    def source(self) -> str:
        """This person's own loopback source address."""
        return source_address(self.index)


def source_address(index: int) -> str:
    """``127.1.0.1`` for person 0, then ``.2`` ... ``.250``, then ``127.1.1.1`` and so on."""
    block, host = divmod(index, HOSTS_PER_BLOCK)
    return str(FIRST_SOURCE + block * 256 + host + 1)


class Roster:
    """Hands out seeded persons to simulated users, each once while there are enough."""

    def __init__(self, plan: SeedPlan, offset: int = 0) -> None:
        self.plan = plan
        self._next = itertools.count(offset)
        self._lock = threading.Lock()
        self._warned = False

    def claim(self) -> Person:
        """The next person; wraps round (with a warning) past the seeded count."""
        with self._lock:
            index = next(self._next)
        if index >= self.plan.users and not self._warned:
            self._warned = True
            logger.warning(
                "more simulated users than seeded people (%d): people are now shared; "
                "seed more with --users",
                self.plan.users,
            )
        index %= self.plan.users
        groups = tuple(seed_plan.group_id(group) for group in self.plan.groups_of(index))
        return Person(index, groups)


_ROSTERS: dict[int, Roster] = {}


def roster(environment: Any) -> Roster:
    """The roster of this Locust environment, built from its command-line options once."""
    found = _ROSTERS.get(id(environment))
    if found is None:
        options = environment.parsed_options
        plan = SeedPlan(options.seed_users, options.seed_groups, options.groups_per_user)
        found = _ROSTERS[id(environment)] = Roster(plan, options.people_offset)
    return found
