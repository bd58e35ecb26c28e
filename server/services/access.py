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

Standing = tuple[Visibility, Role | None] | None
"""A live group's visibility and the user's role in it; None when there is no such group."""


@dataclass(frozen=True, slots=True)
class _Roster:
    """One group as cached: until when, its visibility (None: no such group), its members."""

    until: float
    visibility: Visibility | None
    roles: dict[uuid.UUID, Role]


class GroupAccess:
    """Per group, its visibility and every member's role for a short while; and the policy.

    A group is read whole (it has at most 1,000 members): when many members ask at once, as
    in a reconnect storm, one read answers all of them.
    """

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        ttl_s: float = 60.0,
        max_members: int = 100_000,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl_s
        self._max = max_members
        self._rosters: dict[uuid.UUID, _Roster] = {}
        self._cached_members = 0
        self._forgotten = 0
        """How many times anything was forgotten: a read that saw it change is not cached."""
        self._loading: SingleFlight[uuid.UUID, _Roster] = SingleFlight()

    async def require(self, group_id: uuid.UUID, user_id: uuid.UUID, action: Action) -> None:
        """Return if the policy allows the user ``action`` in the group.

        Raises:
            NotFound: no such group, or the user may not know it exists.
            Forbidden: the group is visible to the user, but the action is not theirs.
        """
        roster = await self._roster(group_id)
        if roster.visibility is None:
            raise NotFound("Study group not found")
        policy.require(roster.roles.get(user_id), action, roster.visibility)

    async def may_read(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Allowed to receive the group's messages (a member)."""
        await self.require(group_id, user_id, Action.READ_MESSAGES)

    async def may_post(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Allowed to post (and type) in the group (a member)."""
        await self.require(group_id, user_id, Action.POST_MESSAGE)

    def forget(self, group_id: uuid.UUID, user_id: uuid.UUID | None = None) -> None:
        """Drop what is cached of the group (one member changed, or the group itself)."""
        self._forgotten += 1
        self._drop(group_id)

    def _drop(self, group_id: uuid.UUID) -> None:
        roster = self._rosters.pop(group_id, None)
        if roster is not None:
            self._cached_members -= len(roster.roles)

    async def _roster(self, group_id: uuid.UUID) -> _Roster:
        roster = self._rosters.get(group_id)
        if roster is not None and roster.until > self._clock():
            return roster
        return await self._loading.do(group_id, lambda: self._load(group_id))

    async def _load(self, group_id: uuid.UUID) -> _Roster:
        forgotten = self._forgotten
        async with self._db.session() as session:
            found = await repo.get_standings(session, group_id)
        until = self._clock() + self._ttl
        roster = _Roster(until, None, {})
        if found is not None:
            roles = {user: Role(role) for user, role in found[1].items()}
            roster = _Roster(until, Visibility(found[0]), roles)
        if forgotten != self._forgotten:  # a change was announced while reading: use, not keep
            return roster
        self._drop(group_id)
        if self._cached_members + len(roster.roles) > self._max:
            self._rosters.clear()
            self._cached_members = 0
        self._rosters[group_id] = roster
        self._cached_members += len(roster.roles)
        return roster


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
