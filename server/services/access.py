"""Who may do what in a group, decided by the policy on a short-lived per-node cache.

Use cases that change a group ask :func:`authorize` inside their transaction; the send
pipeline and the hub ask :meth:`GroupAccess.require` (cached): either way one table,
:mod:`server.services.policy`, decides for REST and sockets alike. Entries are dropped when
membership changes: locally at once, and on other nodes through the bus (the hub calls
:meth:`GroupAccess.forget` on a ``RECHECK`` envelope).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import NotFound
from server.services import policy
from server.services.policy import Action
from server.singleflight import SingleFlight
from server.store import groups as repo
from server.store.db import Database
from server.store.models import Role, StudyGroup, Visibility

Key = tuple[uuid.UUID, uuid.UUID]
Standing = tuple[Visibility, Role | None] | None
"""A live group's visibility and the user's role in it; None when there is no such group."""


class GroupAccess:
    """``(group, user) -> (visibility, role)`` with a short time to live, and the policy."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        ttl_s: float = 60.0,
        max_entries: int = 100_000,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[Key, tuple[float, Standing]] = {}
        self._loading: SingleFlight[Key, Standing] = SingleFlight()

    async def require(self, group_id: uuid.UUID, user_id: uuid.UUID, action: Action) -> None:
        """Return if the policy allows the user ``action`` in the group.

        Raises:
            NotFound: no such group, or the user may not know it exists.
            Forbidden: the group is visible to the user, but the action is not theirs.
        """
        standing = await self._standing(group_id, user_id)
        if standing is None:
            raise NotFound("Study group not found")
        visibility, role = standing
        policy.require(role, action, visibility)

    async def may_read(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Allowed to receive the group's messages (a member)."""
        await self.require(group_id, user_id, Action.READ_MESSAGES)

    async def may_post(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Allowed to post (and type) in the group (a member)."""
        await self.require(group_id, user_id, Action.POST_MESSAGE)

    def forget(self, group_id: uuid.UUID, user_id: uuid.UUID | None = None) -> None:
        """Drop one user's entry, or the whole group's."""
        if user_id is not None:
            self._entries.pop((group_id, user_id), None)
            return
        for key in [k for k in self._entries if k[0] == group_id]:
            del self._entries[key]

    async def _standing(self, group_id: uuid.UUID, user_id: uuid.UUID) -> Standing:
        key = (group_id, user_id)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return await self._loading.do(key, lambda: self._load(key))

    async def _load(self, key: Key) -> Standing:
        """One database read for every concurrent miss of ``key`` (a user's sockets at once)."""
        async with self._db.session() as session:
            row = await repo.get_access(session, *key)
        standing: Standing = None
        if row is not None:
            standing = (Visibility(row[0]), Role(row[1]) if row[1] else None)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, standing)
        return standing


@dataclass(frozen=True, slots=True)
class Loaded:
    """A group and the caller's role in it."""

    group: StudyGroup
    role: Role | None


async def load_group(
    session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
) -> Loaded:
    """The live group and the user's role.

    Raises:
        NotFound: no live group with this id.
    """
    group = await repo.get_group(session, group_id, lock=lock)
    if group is None:
        raise NotFound("Study group not found")
    membership = await repo.get_membership(session, group_id, user_id)
    return Loaded(group, Role(membership.role) if membership else None)


async def authorize(
    session: AsyncSession,
    group_id: uuid.UUID,
    user_id: uuid.UUID,
    action: Action,
    *,
    lock: bool = False,
) -> Loaded:
    """Load the group and check ``action`` against the policy (404 before 403)."""
    loaded = await load_group(session, group_id, user_id, lock=lock)
    policy.require(loaded.role, action, Visibility(loaded.group.visibility))
    return loaded
