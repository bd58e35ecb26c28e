"""Presence between the bus and the sockets: this node's changes out in batches, diffs in.

The book (:mod:`server.hub.presence`) decides, with no I/O; this feed publishes a batch per
group every ``PRESENCE_BATCH_S`` and turns each diff arriving from the bus into what each
local subscriber asked for at subscribe time: the ``presence_diff`` frame itself, a
``presence`` frame per change (the contract's frame; not in groups of more than
``EACH_LIMIT`` online, where it would cost n squared), or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable

import msgspec

from protocol.frames import Presence, PresenceDiff, PresenceMode
from server.bus.base import Bus
from server.hub.connection import Connection
from server.hub.outlet import Outgoing
from server.hub.presence import EACH_LIMIT, Diff, PresenceBook
from server.realtime.envelope import Kind, group_channel, pack
from server.realtime.registry import Registry
from server.singleflight import SingleFlight

log = logging.getLogger(__name__)
PRESENCE_BATCH_S = 0.25
"""Presence changes are announced at most this late, batched per group."""
FLUSH_S = 2.0
"""How long a stopping node waits for its last presence batch to be published."""
_DIFF = msgspec.json.Decoder(PresenceDiff)


class PresenceFeed:
    """This node's presence: its view per group, its batched announcements, its frames."""

    def __init__(self, bus: Bus, registry: Registry) -> None:
        self._bus = bus
        self._registry = registry
        self._book = PresenceBook()
        self._batch: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._loading: SingleFlight[uuid.UUID, list[uuid.UUID]] = SingleFlight()
        self._stopped = False

    async def watch(self, group_id: uuid.UUID) -> None:
        """Load the group's view from the registry, once per local group (one read at once)."""
        if not self._book.knows(group_id):
            users = await self._loading.do(group_id, lambda: self._registry.online(group_id))
            if not self._book.knows(group_id):
                self._book.load(group_id, users)

    def unwatch(self, group_id: uuid.UUID) -> None:
        """The group has no local subscriber left."""
        self._book.drop(group_id)

    def online(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        """Who is online in the group (for ``subscribed``)."""
        return self._book.online(group_id)

    def changed(self, group_id: uuid.UUID, user_id: uuid.UUID, *, online: bool) -> None:
        """Note a change of this node's; it goes out with the next batch."""
        if not self._book.change(group_id, user_id, online):
            return
        if self._stopped:  # a socket released after the last batch: no batch will follow
            self._announce()
        else:
            self._batch = asyncio.get_running_loop().call_later(PRESENCE_BATCH_S, self._announce)

    def received(self, group_id: uuid.UUID, members: Iterable[Connection], frame: bytes) -> None:
        """A diff from the bus: update the view, then tell each local subscriber as it asked."""
        try:
            diff = _DIFF.decode(frame)
        except msgspec.DecodeError:
            log.warning("dropped a malformed presence diff")
            return
        self._book.apply(Diff(group_id, diff.online, diff.offline))
        whole = Outgoing.from_json(Kind.EPHEMERAL, 0, frame, "presence_diff")
        each = [(user, _presence(group_id, user, "online")) for user in diff.online]
        each += [(user, _presence(group_id, user, "offline")) for user in diff.offline]
        crowded = self._book.count(group_id) > EACH_LIMIT
        for conn in tuple(members):
            mode = conn.presence.get(group_id, "each") if conn.presence else "each"
            if mode == "diff":
                conn.offer(whole)
            elif mode == "each" and not crowded:
                # Not the socket's own user: their first socket's subscribed already says it.
                for user, item in each:
                    if user != conn.user_id:
                        conn.offer(item)

    async def reload(self, group_ids: Iterable[uuid.UUID]) -> None:
        """After a bus reconnect: diffs may have been missed; load the groups' views again."""
        watched = set(self._book.groups())
        for group_id in (g for g in group_ids if g in watched):
            try:
                self._book.load(group_id, await self._registry.online(group_id))
            except Exception as exc:
                log.warning("could not reload presence", extra={"error": repr(exc)})
                return

    async def stop(self, flush_s: float = FLUSH_S) -> None:
        """Announce the changes still batched, wait (bounded) for them to go out, then stop.

        A node shutting down has just closed its sockets, each a change to ``offline``
        whose registry entry is already gone: no other node's sweep would ever report it,
        so dropping the batch left those users online elsewhere until they came back.
        """
        self._stopped = True
        if self._batch is not None:
            self._batch.cancel()
            self._batch = None
        self._announce()
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=flush_s)
        for task in self._sending:
            task.cancel()

    def _announce(self) -> None:
        for diff in self._book.take():
            frame = PresenceDiff(group_id=diff.group_id, online=diff.online, offline=diff.offline)
            task = asyncio.get_running_loop().create_task(
                self._publish(group_channel(diff.group_id), pack(Kind.PRESENCE, frame))
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _publish(self, channel: str, payload: bytes) -> None:
        with contextlib.suppress(Exception):  # presence is best effort; a lease sweep corrects it
            await self._bus.publish(channel, payload)


def set_mode(conn: Connection, group_id: uuid.UUID, mode: PresenceMode) -> None:
    """Remember how a subscription wants presence (``each`` is the default, kept implicitly)."""
    if mode != "each":
        conn.presence = conn.presence or {}
        conn.presence[group_id] = mode
    elif conn.presence is not None:
        conn.presence.pop(group_id, None)


def _presence(group_id: uuid.UUID, user_id: uuid.UUID, status: str) -> Outgoing:
    frame = Presence(group_id=group_id, user_id=user_id, status=status)  # type: ignore[arg-type]
    return Outgoing.shared(frame)
