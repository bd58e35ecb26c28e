"""The hub: this node's sockets, their group subscriptions, and fan-out from the bus.

One bus subscription per group (and per user) per node, however many local sockets share
it. A message arriving from the bus is offered to every local subscriber without waiting;
each subscription's :class:`~server.hub.cursor.Cursor` drops duplicates and notices gaps,
which are filled from the recovery window before anything newer is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine, Iterable
from typing import Any

import msgspec

from protocol.errors import CloseCode
from protocol.frames import PresenceMode, Ref, Subscribed, TypingNotice, Unsubscribed
from server.aio import cancel_and_wait
from server.bus.base import Bus
from server.hub.catchup import RESUBSCRIBE, CatchUp, messages
from server.hub.connection import Connection, Outgoing
from server.hub.cursor import Cursor, Verdict
from server.hub.outlet import Cork
from server.hub.ports import Access, Recovery
from server.hub.presence_feed import PresenceFeed, set_mode
from server.hub.window import RecentWindow
from server.observability.metrics import FRAMES, WS_CONNECTIONS
from server.realtime.envelope import (
    BadEnvelope,
    Envelope,
    Kind,
    group_channel,
    pack,
    unpack,
    user_channel,
)
from server.realtime.registry import Registry

log = logging.getLogger(__name__)
TYPING_INTERVAL_S = 2.0
RELEASE_RETRIES_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""When a lease that could not be given back is tried again (16 s in all, within the lease's
30 s): a lease left behind counts against the user's cap of sockets until it expires, so a
client reconnecting through a Redis failover would be refused 4009."""


class Hub:
    """Local subscribers per group, fed by the bus."""

    def __init__(
        self,
        bus: Bus,
        registry: Registry,
        access: Access,
        recovery: Recovery,
        *,
        max_sockets: int,
        window: int,
        window_s: float = 24 * 3600,
        maintenance_s: float = 5.0,
    ) -> None:
        self._bus = bus
        self._registry = registry
        self._access = access
        self._recovery = recovery
        self._max_sockets = max_sockets
        self._window = window
        self._window_s = window_s
        self._recent: dict[uuid.UUID, RecentWindow[Outgoing]] = {}
        """Per local group, the latest messages seen go by (replays from memory)."""
        self._maintenance_s = maintenance_s
        self._users: dict[uuid.UUID, set[Connection]] = {}
        self._groups: dict[uuid.UUID, set[Connection]] = {}
        self._channel_ids: dict[str, uuid.UUID] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._presence = PresenceFeed(bus, registry)
        self._catchup = CatchUp(recovery)
        self._draining = False
        self.cork = Cork()
        """Coalesces this node's socket writes per loop turn (see :class:`Cork`)."""

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start lease refreshing and presence sweeping; listen for bus reconnects."""
        self._bus.on_resync(self._resync)
        self._maintenance = asyncio.create_task(self._maintain(), name="hub-maintenance")

    async def stop(self) -> None:
        """Stop background work, after announcing the presence changes still batched."""
        await self._presence.stop()
        await self._catchup.stop()
        await cancel_and_wait([self._maintenance, *self._tasks])

    async def drain(
        self,
        code: int = CloseCode.GOING_AWAY,
        batch: int = 200,
        pause_s: float = 0.05,
        deadline_s: float = 10.0,
    ) -> None:
        """Close every socket, a batch at a time, and wait (bounded) for the closes to go out.

        Each socket's slot (its lease, seen by every node) is given back before its close
        goes out. From now on a socket's end leaves its bus channels to the bus's own
        shutdown: only its presence, which other nodes see, is released one by one.
        """
        self._draining = True
        connections = [conn for conns in self._users.values() for conn in conns]
        for start in range(0, len(connections), batch):
            closing = connections[start : start + batch]
            # Slots first: a client that reconnects at once, on another node, must not find
            # its own lease still held and be refused as a 4th socket (4009).
            await asyncio.gather(
                *(self._quietly(self._registry.release(c.user_id, c.session_id)) for c in closing)
            )
            for conn in closing:
                conn.close(code, "server going away")
            await asyncio.sleep(pause_s)
        waiting = [asyncio.ensure_future(conn.closed.wait()) for conn in connections]
        if waiting:
            await asyncio.wait(waiting, timeout=deadline_s)
            for future in waiting:
                future.cancel()

    # -- connections ------------------------------------------------------------------

    async def admit(self, conn: Connection) -> bool:
        """Take a connection slot for the user (at most ``max_sockets`` across nodes)."""
        if not await self._registry.acquire(conn.user_id, conn.session_id, self._max_sockets):
            return False
        conns = self._users.setdefault(conn.user_id, set())
        conns.add(conn)
        if len(conns) == 1:
            try:
                await self._bus.subscribe(user_channel(conn.user_id), self._on_user)
            except BaseException:
                await self.release(conn)
                raise
        WS_CONNECTIONS.inc()
        return True

    async def release(self, conn: Connection) -> None:
        """Forget a closed connection: its subscriptions, presence and slot."""
        for group_id in list(conn.groups):
            await self._leave(conn, group_id)
        conns = self._users.get(conn.user_id)
        if conns is not None and conn in conns:
            conns.discard(conn)
            WS_CONNECTIONS.dec()
            if not conns:
                del self._users[conn.user_id]
                if not self._draining:
                    await self._quietly(
                        self._bus.unsubscribe(user_channel(conn.user_id), self._on_user)
                    )
        await self._give_back(conn.user_id, conn.session_id)

    async def _give_back(self, user_id: uuid.UUID, session_id: str) -> None:
        """Give a socket's slot back; if Redis is in flux, keep trying in the background."""
        try:
            await self._registry.release(user_id, session_id)
        except Exception:
            self._spawn(self._give_back_later(user_id, session_id))

    async def _give_back_later(self, user_id: uuid.UUID, session_id: str) -> None:
        for delay in RELEASE_RETRIES_S:
            await asyncio.sleep(delay)
            try:
                await self._registry.release(user_id, session_id)
            except Exception as exc:
                log.info("a socket's slot is not given back yet", extra={"error": repr(exc)})
                continue
            return
        log.warning("a socket's slot was not given back; it expires with its lease")

    # -- subscriptions ----------------------------------------------------------------

    async def subscribe(
        self,
        conn: Connection,
        group_id: uuid.UUID,
        since_seq: int | None,
        ref: Ref | None = None,
        presence: PresenceMode = "each",
    ) -> Subscribed:
        """Subscribe (or re-subscribe) a connection, replaying what it missed first.

        Raises:
            NotFound: not a member of the group.
            BusUnavailable: the bus cannot confirm the subscription.
        """
        await self._access.may_read(group_id, conn.user_id)
        renewing = group_id in conn.groups
        cursor = conn.groups[group_id] = Cursor[Outgoing](self._window)
        try:
            await self._attach(conn, group_id)
            last = await self._recovery.last_seq(group_id)
            missed = await self._missed(group_id, since_seq, last)
            await self._presence.watch(group_id)
            if not renewing and await self._registry.join(group_id, conn.user_id, conn.session_id):
                self._presence.changed(group_id, conn.user_id, online=True)
        except BaseException:
            await self._leave(conn, group_id)
            raise
        set_mode(conn, group_id, presence)
        online = self._presence.online(group_id)
        if conn.user_id not in online:  # online through another node, whose batch is on its way
            online = [*online, conn.user_id]
        recovered = missed is not None
        cursor.delivered = since_seq if recovered and since_seq is not None else last
        replayed = await self._catchup.replay(conn, cursor, missed or [], last)
        if not replayed or conn.groups.get(group_id) is not cursor:  # stalled, or unsubscribed
            return Subscribed(group_id=group_id, last_seq=last, online=online, recovered=False)
        subscribed = Subscribed(
            group_id=group_id, last_seq=last, online=online, recovered=recovered
        )
        conn.reply(msgspec.structs.replace(subscribed, ref=ref) if ref is not None else subscribed)
        self._catchup.apply(conn, group_id, cursor.release())
        return subscribed

    async def _missed(
        self, group_id: uuid.UUID, since: int | None, last: int
    ) -> list[Outgoing] | None:
        """What a resubscribing socket missed; None when it cannot be recovered.

        From this node's memory when it holds all of it (and it is young enough), else from
        the log. None for a first subscription, for more than the window holds, and for a
        ``since`` past the group's last seq: a client that saw what the group no longer holds
        (a restore from backup) or an off-by-one. Its cursor starts at the last seq, so it
        misses nothing that comes next, and ``recovered: false`` tells it to reload.
        """
        if since is None:
            return None
        if since > last:
            log.info("a client resubscribed ahead of the group's log", extra={"seq": since})
            return None
        window = self._recent.get(group_id)
        local = window.covering(since, last) if window is not None else None
        if local is not None and (not local or local[0].created >= time.time() - self._window_s):
            return local
        replay = await self._recovery.replay(group_id, since, last)
        return messages(replay.frames) if replay.recovered else None

    async def unsubscribe(self, conn: Connection, group_id: uuid.UUID) -> bool:
        """End a subscription; False if there was none."""
        if group_id not in conn.groups:
            return False
        await self._leave(conn, group_id)
        return True

    async def typing(self, conn: Connection, group_id: uuid.UUID) -> None:
        """Tell the group's other subscribers; at most once per 2 s per user and group.

        Raises:
            NotFound: not a member.
        """
        await self._access.may_post(group_id, conn.user_id)
        if not await self._registry.claim_typing(group_id, conn.user_id, TYPING_INTERVAL_S):
            return  # announced within the interval, from this node or another
        frame = TypingNotice(group_id=group_id, user_id=conn.user_id)
        await self._bus.publish(
            group_channel(group_id), pack(Kind.EPHEMERAL, frame, exclude=conn.session_id)
        )

    async def _attach(self, conn: Connection, group_id: uuid.UUID) -> None:
        members = self._groups.setdefault(group_id, set())
        members.add(conn)
        if len(members) == 1:
            self._recent[group_id] = RecentWindow(self._window)
            self._channel_ids[group_channel(group_id)] = group_id
            await self._bus.subscribe(group_channel(group_id), self._on_group)

    def _detach(self, conn: Connection, group_id: uuid.UUID) -> bool:
        """Stop delivering to ``conn`` at once; True if it was subscribed."""
        if conn.groups.pop(group_id, None) is None:
            return False
        members = self._groups.get(group_id)
        if members is not None:
            members.discard(conn)
        return True

    async def _leave(self, conn: Connection, group_id: uuid.UUID) -> None:
        if self._detach(conn, group_id):
            await self._after_detach(conn, group_id)

    async def _after_detach(self, conn: Connection, group_id: uuid.UUID) -> None:
        if conn.presence is not None:
            conn.presence.pop(group_id, None)
        if group_id in self._groups and not self._groups[group_id]:
            del self._groups[group_id]
            self._recent.pop(group_id, None)
            self._presence.unwatch(group_id)
            if not self._draining:
                channel = group_channel(group_id)
                await self._quietly(self._bus.unsubscribe(channel, self._on_group))
        try:
            last = await self._registry.leave(group_id, conn.user_id, conn.session_id)
        except Exception:
            return
        if last:
            self._presence.changed(group_id, conn.user_id, online=False)

    # -- fan-out ----------------------------------------------------------------------

    def _on_group(self, channel: str, payload: bytes) -> None:
        group_id = self._channel_ids.get(channel)
        members = self._groups.get(group_id) if group_id else None
        if not members or group_id is None:
            return
        try:
            envelope = unpack(payload)
        except BadEnvelope:
            log.warning("dropped a malformed bus payload", extra={"channel": channel})
            return
        if envelope.kind is Kind.MESSAGE:
            created = int(envelope.subject) / 1000 if envelope.subject.isdigit() else 0.0
            item = Outgoing.from_json(
                Kind.MESSAGE, envelope.seq, envelope.frame, "message", created
            )
            window = self._recent.get(group_id)
            if window is not None:
                window.add(item)
            for conn in tuple(members):
                cursor = conn.groups.get(group_id)
                if cursor is not None:
                    self._deliver(conn, group_id, cursor, item)
        elif envelope.kind is Kind.RECHECK:
            self._revoke(group_id, envelope.subject)
        elif envelope.kind is Kind.PRESENCE:
            self._presence.received(group_id, members, envelope.frame)
        else:
            if envelope.kind is Kind.EVENT:  # an edit or deletion changes what replays show
                self._forget_recent(group_id)
            self._broadcast(members, envelope)

    def _on_user(self, channel: str, payload: bytes) -> None:
        try:
            user_id, envelope = uuid.UUID(channel.removeprefix("u:")), unpack(payload)
        except (BadEnvelope, ValueError):
            log.warning("dropped a malformed bus payload", extra={"channel": channel})
            return
        conns = self._users.get(user_id, set())
        if envelope.kind is Kind.DISCONNECT:
            for conn in tuple(conns):
                conn.close(CloseCode.UNAUTHORIZED, "session ended")
            return
        self._broadcast(conns, envelope)

    def _broadcast(self, conns: Iterable[Connection], envelope: Envelope) -> None:
        kind = Kind.EPHEMERAL if envelope.kind is Kind.EPHEMERAL else Kind.EVENT
        item = Outgoing.from_json(kind, 0, envelope.frame, kind.name.lower())
        for conn in tuple(conns):
            if conn.session_id != envelope.exclude:
                conn.offer(item)

    def _deliver(
        self, conn: Connection, group_id: uuid.UUID, cursor: Cursor[Outgoing], item: Outgoing
    ) -> None:
        """Offer a live message as the subscription's cursor decides."""
        verdict = cursor.live(item)
        if verdict is Verdict.WRITE:
            conn.offer(item)
        elif verdict is Verdict.FILL:
            self._catchup.fill(conn, group_id, cursor.delivered)
        elif verdict is Verdict.OVERFLOW:
            conn.close(CloseCode.SERVICE_RESTART, RESUBSCRIBE)

    def _revoke(self, group_id: uuid.UUID, subject: str) -> None:
        """Membership ended: stop delivering to the affected sockets at once.

        The group's window of recent frames is dropped too: a member who left may have had
        their messages erased from the log (an account's erasure), and replays then read it.
        """
        user = uuid.UUID(subject) if subject else None
        self._access.forget(group_id, user)
        self._forget_recent(group_id)
        for conn in tuple(self._groups.get(group_id, ())):
            if (user is None or conn.user_id == user) and self._detach(conn, group_id):
                conn.reply(Unsubscribed(group_id=group_id))
                self._spawn(self._after_detach(conn, group_id))

    def _forget_recent(self, group_id: uuid.UUID) -> None:
        """Drop the group's window of recent frames: replays read the log until it refills."""
        window = self._recent.get(group_id)
        if window is not None:
            window.clear()

    def _resync(self, channels: frozenset[str]) -> None:
        """After a bus reconnect: look for what the groups of ``channels`` missed meanwhile.

        Messages come back by seq from the log, presence from the registry; the groups'
        windows of recent frames may lack what was missed, so they are dropped.
        """
        found = map(self._channel_ids.get, channels)
        groups = [g for g in found if g is not None and g in self._groups]
        if groups:
            self._spawn(self._presence.reload(groups))
        for group_id in groups:
            self._forget_recent(group_id)
            for conn in tuple(self._groups[group_id]):
                cursor = conn.groups.get(group_id)
                if cursor is not None and cursor.hold():
                    self._catchup.fill(conn, group_id, cursor.delivered)

    # -- maintenance ------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._maintenance_s)
            FRAMES.flush()
            try:
                await self._refresh_and_sweep()
            except Exception as exc:
                log.warning("hub maintenance failed", extra={"error": repr(exc)})

    async def _refresh_and_sweep(self) -> None:
        leases = [
            (conn.user_id, conn.session_id) for conns in self._users.values() for conn in conns
        ]
        presence = [
            (g, conn.user_id, conn.session_id)
            for g, members in self._groups.items()
            for conn in members
        ]
        await self._registry.refresh(leases, presence)
        for group_id in list(self._groups):
            for user_id in await self._registry.sweep(group_id):
                self._presence.changed(group_id, user_id, online=False)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(awaitable: object) -> None:
        with contextlib.suppress(Exception):
            await awaitable  # type: ignore[misc]
