"""The hub: this node's sockets, their group subscriptions, and fan-out from the bus.

One bus subscription per group (and per user) per node, however many local sockets share
it. A message arriving from the bus is decoded to text once and offered to every local
subscriber without waiting; per-subscription ``seq`` bookkeeping drops duplicates and notices
gaps, which are filled from the recovery window before anything newer is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine, Iterable
from typing import Any

import msgspec

from protocol.errors import CloseCode
from protocol.frames import Presence, Ref, Subscribed, TypingNotice, Unsubscribed
from server.bus.base import Bus
from server.hub.connection import Connection, GroupState, Outgoing
from server.hub.outlet import Cork
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
from server.services.membership import MembershipCache
from server.services.messages import MessagePipeline

log = logging.getLogger(__name__)
TYPING_INTERVAL_S = 2.0


class Hub:
    """Local subscribers per group, fed by the bus."""

    def __init__(
        self,
        bus: Bus,
        registry: Registry,
        pipeline: MessagePipeline,
        membership: MembershipCache,
        *,
        max_sockets: int,
        maintenance_s: float = 5.0,
    ) -> None:
        self._bus = bus
        self._registry = registry
        self._pipeline = pipeline
        self._membership = membership
        self._max_sockets = max_sockets
        self._maintenance_s = maintenance_s
        self._users: dict[uuid.UUID, set[Connection]] = {}
        self._groups: dict[uuid.UUID, set[Connection]] = {}
        self._channel_ids: dict[str, uuid.UUID] = {}
        self._typing: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self.cork = Cork()
        """Coalesces this node's socket writes per loop turn (see :class:`Cork`)."""

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start lease refreshing and presence sweeping; listen for bus reconnects."""
        self._bus.on_resync(self._resync_all)
        self._maintenance = asyncio.create_task(self._maintain(), name="hub-maintenance")

    async def stop(self) -> None:
        """Stop background work."""
        for task in [self._maintenance, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._maintenance, *self._tasks] if t), return_exceptions=True
        )

    async def drain(
        self,
        code: int = CloseCode.GOING_AWAY,
        batch: int = 200,
        pause_s: float = 0.05,
        deadline_s: float = 10.0,
    ) -> None:
        """Close every socket, a batch at a time, and wait (bounded) for the closes to go out."""
        connections = [conn for conns in self._users.values() for conn in conns]
        for start in range(0, len(connections), batch):
            for conn in connections[start : start + batch]:
                conn.close(code, "server going away")
            await asyncio.sleep(pause_s)
        waiting = [asyncio.ensure_future(conn.closed.wait()) for conn in connections]
        if waiting:
            await asyncio.wait(waiting, timeout=deadline_s)
            for future in waiting:
                future.cancel()

    @property
    def connection_count(self) -> int:
        """Sockets on this node."""
        return sum(len(conns) for conns in self._users.values())

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
                await self._quietly(
                    self._bus.unsubscribe(user_channel(conn.user_id), self._on_user)
                )
        await self._quietly(self._registry.release(conn.user_id, conn.session_id))

    # -- subscriptions ----------------------------------------------------------------

    async def subscribe(
        self, conn: Connection, group_id: uuid.UUID, since_seq: int | None, ref: Ref | None = None
    ) -> Subscribed:
        """Subscribe (or re-subscribe) a connection, replaying what it missed first.

        Raises:
            NotFound: not a member of the group.
            BusUnavailable: the bus cannot confirm the subscription.
        """
        await self._membership.require_member(group_id, conn.user_id)
        renewing = group_id in conn.groups
        state = conn.groups[group_id] = GroupState(buffer=[])
        try:
            await self._attach(conn, group_id)
            last = await self._pipeline.last_seq(group_id)
            replay = (
                await self._pipeline.replay(group_id, since_seq, last)
                if since_seq is not None
                else None
            )
            first = (
                False
                if renewing
                else await self._registry.join(group_id, conn.user_id, conn.session_id)
            )
            online = await self._registry.online(group_id)
        except BaseException:
            await self._leave(conn, group_id)
            raise
        for frame in replay.frames if replay else ():
            conn.offer(Outgoing.from_json(Kind.MESSAGE, frame.seq, frame.frame, "message"))
        subscribed = Subscribed(
            group_id=group_id,
            last_seq=last,
            online=online,
            recovered=bool(replay and replay.recovered),
        )
        if ref is not None:
            subscribed = msgspec.structs.replace(subscribed, ref=ref)
        self._activate(conn, group_id, state, last, subscribed)
        if first:
            await self._announce(group_id, conn.user_id, "online")
        return subscribed

    async def unsubscribe(self, conn: Connection, group_id: uuid.UUID) -> bool:
        """End a subscription; False if there was none."""
        if group_id not in conn.groups:
            return False
        await self._leave(conn, group_id)
        return True

    async def typing(self, conn: Connection, group_id: uuid.UUID, now: float) -> None:
        """Tell the group's other subscribers; at most once per 2 s per user and group.

        Raises:
            NotFound: not a member.
        """
        await self._membership.require_member(group_id, conn.user_id)
        key = (group_id, conn.user_id)
        if now - self._typing.get(key, 0.0) < TYPING_INTERVAL_S:
            return
        if len(self._typing) > 50_000:  # noqa: PLR2004 - keep the throttle table bounded
            self._typing.clear()
        self._typing[key] = now
        frame = TypingNotice(group_id=group_id, user_id=conn.user_id)
        await self._bus.publish(
            group_channel(group_id), pack(Kind.EPHEMERAL, frame, exclude=conn.session_id)
        )

    def _activate(
        self,
        conn: Connection,
        group_id: uuid.UUID,
        state: GroupState,
        last: int,
        subscribed: Subscribed,
    ) -> None:
        conn.reply(subscribed)
        buffered, state.buffer, state.delivered = state.buffer or [], None, last
        for item in buffered:
            self._deliver(conn, group_id, state, item)

    async def _attach(self, conn: Connection, group_id: uuid.UUID) -> None:
        members = self._groups.setdefault(group_id, set())
        members.add(conn)
        if len(members) == 1:
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
        if group_id in self._groups and not self._groups[group_id]:
            del self._groups[group_id]
            await self._quietly(self._bus.unsubscribe(group_channel(group_id), self._on_group))
        try:
            last = await self._registry.leave(group_id, conn.user_id, conn.session_id)
        except Exception:
            return
        if last:
            await self._announce(group_id, conn.user_id, "offline")

    async def _announce(self, group_id: uuid.UUID, user_id: uuid.UUID, status: str) -> None:
        frame = Presence(group_id=group_id, user_id=user_id, status=status)  # type: ignore[arg-type]
        await self._quietly(self._bus.publish(group_channel(group_id), pack(Kind.EPHEMERAL, frame)))

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
            for conn in tuple(members):
                state = conn.groups.get(group_id)
                if state is not None:
                    self._deliver(conn, group_id, state, item)
        elif envelope.kind is Kind.RECHECK:
            self._revoke(group_id, envelope.subject)
        else:
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
        self, conn: Connection, group_id: uuid.UUID, state: GroupState, item: Outgoing
    ) -> None:
        if state.buffer is not None:
            state.buffer.append(item)
            return
        if item.seq <= state.delivered:
            return
        if item.seq > state.delivered + 1:
            state.buffer = [item]
            self._spawn(self._fill_gap(conn, group_id, state))
            return
        state.delivered = item.seq
        conn.offer(item)

    def _revoke(self, group_id: uuid.UUID, subject: str) -> None:
        """Membership ended: stop delivering to the affected sockets at once."""
        user = uuid.UUID(subject) if subject else None
        self._membership.forget(group_id, user)
        for conn in tuple(self._groups.get(group_id, ())):
            if (user is None or conn.user_id == user) and self._detach(conn, group_id):
                conn.reply(Unsubscribed(group_id=group_id))
                self._spawn(self._after_detach(conn, group_id))

    # -- recovery ---------------------------------------------------------------------

    async def _fill_gap(self, conn: Connection, group_id: uuid.UUID, state: GroupState) -> None:
        """Write what a subscription missed, then what arrived meanwhile, in seq order."""
        try:
            last = await self._pipeline.last_seq(group_id)
            replay = await self._pipeline.replay(group_id, state.delivered, last)
        except Exception:
            log.exception("gap recovery failed")
            conn.close(CloseCode.SERVICE_RESTART, "recovery failed; resubscribe with since_seq")
            return
        if not replay.recovered:
            conn.close(CloseCode.SERVICE_RESTART, "missed too much; resubscribe with since_seq")
            return
        buffered, state.buffer = state.buffer or [], None
        for frame in replay.frames:
            self._deliver(
                conn,
                group_id,
                state,
                Outgoing.from_json(Kind.MESSAGE, frame.seq, frame.frame, "message"),
            )
        for item in buffered:
            self._deliver(conn, group_id, state, item)

    def _resync_all(self) -> None:
        """After a bus reconnect: look for messages published while it was down."""
        for group_id, members in self._groups.items():
            for conn in tuple(members):
                state = conn.groups.get(group_id)
                if state is not None and state.buffer is None:
                    state.buffer = []
                    self._spawn(self._fill_gap(conn, group_id, state))

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
                await self._announce(group_id, user_id, "offline")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(awaitable: object) -> None:
        with contextlib.suppress(Exception):
            await awaitable  # type: ignore[misc]
