"""Who the seeded load-test people are, derived from their index alone (no I/O).

``python -m server.admin seed`` writes this plan to the database; the Locust scenarios
(``loadtests/``) read the same plan to log in as seeded person ``i`` and to know which
groups that person belongs to, so neither side has to ask the other. Ids are UUIDv5 of
fixed names, which makes re-seeding idempotent: the same person always has the same id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

DOMAIN = "loadtest.invalid"
"""RFC 2606 reserves ``.invalid``: no seeded address can ever receive mail."""
PASSWORD = "study-evening-load-test-2026"  # noqa: S105  # nosec B105
"""Every seeded person's password (documented in the README's "Load testing")."""
PRIVATE_EVERY = 10
"""Every tenth group is private."""
BUSY_SHARE = 10
"""Group 0 holds one message in this many (the busy group of the read benchmark)."""
NAMESPACE = uuid.UUID("6f1d3b8e-2c0a-5e49-9a57-1b3c9d0e7f21")
SUBJECTS = (
    "Mathematics",
    "Physics",
    "Chemistry",
    "Biology",
    "History",
    "Literature",
    "Computer Science",
    "Economics",
    "Philosophy",
    "Languages",
)


def email(index: int) -> str:
    """The email of seeded person ``index``."""
    return f"user{index}@{DOMAIN}"


def username(index: int) -> str:
    """The username of seeded person ``index``."""
    return f"loadtest_{index}"


def user_id(index: int) -> uuid.UUID:
    """The id of seeded person ``index``."""
    return uuid.uuid5(NAMESPACE, email(index))


def group_id(index: int) -> uuid.UUID:
    """The id of seeded group ``index``."""
    return uuid.uuid5(NAMESPACE, f"group-{index}")


def subject(index: int) -> str:
    """The subject of seeded group ``index``."""
    return SUBJECTS[index % len(SUBJECTS)]


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """``users`` people and ``groups`` groups; each person is in ``groups_per_user`` groups.

    Person ``i`` is in groups ``i``, ``i + stride``, ... (mod ``groups``), so every group
    gets about ``users * groups_per_user / groups`` members and people who chat share
    groups. Group ``j`` is owned by person ``j`` (who is in it: ``j mod groups == j``).
    Every tenth group is private; the rest are public, to be found and joined.
    """

    users: int
    groups: int
    groups_per_user: int = 2
    messages: int = 0
    """Messages over all groups: group 0, the busy one, has a tenth; the rest share the rest."""

    def __post_init__(self) -> None:
        if self.groups < 1 or self.users < self.groups or self.groups_per_user < 1:
            raise ValueError("a plan needs 1 <= groups <= users and groups_per_user >= 1")
        if self.messages < 0:
            raise ValueError("a plan needs messages >= 0")

    def messages_in(self, group: int) -> int:
        """How many messages group ``group`` holds (seqs ``1..n``)."""
        if self.groups == 1:
            return self.messages
        busy = self.messages // BUSY_SHARE
        if group == 0:
            return busy
        share, extra = divmod(self.messages - busy, self.groups - 1)
        return share + (1 if group - 1 < extra else 0)

    def members(self) -> dict[int, list[int]]:
        """Each group's people, in index order."""
        members: dict[int, list[int]] = {group: [] for group in range(self.groups)}
        for person in range(self.users):
            for group in self.groups_of(person):
                members[group].append(person)
        return members

    @property
    def stride(self) -> int:
        """Distance between one person's groups."""
        return max(1, self.groups // self.groups_per_user)

    def groups_of(self, index: int) -> list[int]:
        """The groups of person ``index``, without repeats, first one first."""
        seen: dict[int, None] = {}
        for step in range(self.groups_per_user):
            seen.setdefault((index + step * self.stride) % self.groups, None)
        return list(seen)

    @staticmethod
    def owner_of(group: int) -> int:
        """The person who owns group ``group``."""
        return group

    @staticmethod
    def is_private(group: int) -> bool:
        """Whether group ``group`` is private (every tenth, from the tenth)."""
        return group % PRIVATE_EVERY == PRIVATE_EVERY - 1
