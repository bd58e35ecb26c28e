"""Role lookups for the hot path (every socket frame), cached per node.

An entry is dropped when membership changes: locally at once, and on other nodes through the
bus (the hub calls :meth:`MembershipCache.forget` on a ``RECHECK`` envelope).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from server.errors import NotFound
from server.store import groups as repo
from server.store.db import Database
from server.store.models import Role

Key = tuple[uuid.UUID, uuid.UUID]


class MembershipCache:
    """``(group, user) -> role`` with a short time to live."""

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
        self._entries: dict[Key, tuple[float, Role | None]] = {}

    async def role(self, group_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
        """The user's role in the live group, or None."""
        key = (group_id, user_id)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        async with self._db.session() as session:
            value = await repo.get_role(session, group_id, user_id)
        role = Role(value) if value else None
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, role)
        return role

    async def require_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> Role:
        """The role, or NotFound for non-members (groups are not probed by id).

        Raises:
            NotFound: not a member, or no such group.
        """
        role = await self.role(group_id, user_id)
        if role is None:
            raise NotFound("Study group not found, or you are not a member")
        return role

    def forget(self, group_id: uuid.UUID, user_id: uuid.UUID | None = None) -> None:
        """Drop one user's entry, or the whole group's."""
        if user_id is not None:
            self._entries.pop((group_id, user_id), None)
            return
        for key in [k for k in self._entries if k[0] == group_id]:
            del self._entries[key]
