"""Who is online in each group this node serves, and the changes it has yet to announce. No I/O.

Presence must not cost n squared: 1,000 members coming back at once would otherwise send each
other half a million frames. So changes are not announced one by one: each node collects its
own (a user's first socket in a group: online; their last one gone: offline) and publishes
them per group as one ``presence_diff`` every fraction of a second; a user who came and went
within that time is not announced at all. Every node applies every diff to its view, which
answers ``subscribed.online`` without asking Redis again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

EACH_LIMIT = 100
"""Above this many members online, ``presence`` frames (one per change) stop: subscribers that
want presence in a crowd ask for ``presence_diff`` instead."""


@dataclass(frozen=True, slots=True)
class Diff:
    """The net presence changes of one group."""

    group_id: uuid.UUID
    online: list[uuid.UUID]
    offline: list[uuid.UUID]


class PresenceBook:
    """Per group: the users online (as far as this node knows) and the changes to announce."""

    __slots__ = ("_listed", "_online", "_pending")

    def __init__(self) -> None:
        self._online: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._pending: dict[uuid.UUID, dict[uuid.UUID, bool]] = {}
        self._listed: dict[uuid.UUID, list[uuid.UUID]] = {}
        """The online list last handed out per group, until the group's view changes."""

    def knows(self, group_id: uuid.UUID) -> bool:
        """Whether the group's view is loaded (this node has subscribers there)."""
        return group_id in self._online

    def load(self, group_id: uuid.UUID, users: list[uuid.UUID]) -> None:
        """Start the group's view from the registry (its first local subscriber)."""
        self._online[group_id] = set(users)
        self._listed.pop(group_id, None)

    def drop(self, group_id: uuid.UUID) -> None:
        """Forget the group's view (its last local subscriber left)."""
        self._online.pop(group_id, None)
        self._listed.pop(group_id, None)

    def groups(self) -> list[uuid.UUID]:
        """Groups with a view."""
        return list(self._online)

    def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """The users online in the group (in no particular order; shared until it changes)."""
        listed = self._listed.get(group_id)
        if listed is None:
            listed = list(self._online.get(group_id, ()))
            if group_id in self._online:
                self._listed[group_id] = listed
        return listed

    def count(self, group_id: uuid.UUID) -> int:
        """How many users are online in the group."""
        return len(self._online.get(group_id, ()))

    def change(self, group_id: uuid.UUID, user_id: uuid.UUID, online: bool) -> bool:
        """Record a change of this node's to announce; True when nothing was waiting before."""
        first = not self._pending
        changes = self._pending.setdefault(group_id, {})
        if changes.get(user_id) is (not online):
            del changes[user_id]  # came and went (or went and came) within one batch: no news
        else:
            changes[user_id] = online
        view = self._online.get(group_id)
        if view is not None and online and user_id not in view:
            view.add(user_id)  # a subscriber sees itself online at once
            self._listed.pop(group_id, None)
        return first

    def take(self) -> list[Diff]:
        """The changes to announce now, one diff per group (and none are waiting after)."""
        pending, self._pending = self._pending, {}
        diffs = []
        for group_id, changes in pending.items():
            online = [user for user, up in changes.items() if up]
            offline = [user for user, up in changes.items() if not up]
            if online or offline:
                diffs.append(Diff(group_id, online, offline))
        return diffs

    def apply(self, diff: Diff) -> None:
        """A diff from the bus (any node's, this one's included)."""
        view = self._online.get(diff.group_id)
        if view is None:
            return
        view.update(diff.online)
        view.difference_update(diff.offline)
        self._listed.pop(diff.group_id, None)
