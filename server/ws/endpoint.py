"""``GET /api/v1/ws``: the only code that receives and sends on sockets.

It checks the Origin, negotiates the subprotocol, waits (5 s) for ``auth``, takes a connection
slot, then moves frames: decode, ask the session what they mean, carry out the effects with
the services and the hub, and write replies through the connection's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from protocol.codec import Codec, FatalFrame, InvalidFrame, negotiate
from protocol.errors import CloseCode, ErrorCode
from protocol.frames import Ack, ClientFrames, Unsubscribed
from server.errors import AppError, RateLimited
from server.hub.connection import Connection
from server.hub.outlet import FrameWriter
from server.infra import as_unavailable
from server.observability.context import user_id_var
from server.observability.metrics import FRAMES
from server.ws.admission import Admission, refuse_busy
from server.ws.refusals import refuse
from server.ws.session import (
    Authenticate,
    Close,
    DoRead,
    DoSend,
    DoSubscribe,
    DoTyping,
    DoUnsubscribe,
    Effect,
    FrameBudget,
    Phase,
    Reply,
    Session,
)
from server.ws.uvicorn_protocol import EXTENSION as FRAMES_EXTENSION

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from server.node import Node
    from server.security.tokens import Principal

log = logging.getLogger(__name__)
INTERNAL_MESSAGE = "Internal error; it was logged"
SOCKET_CODES = {ErrorCode.FORBIDDEN: ErrorCode.NOT_FOUND}
"""Socket errors speak of membership only (contract section 4): a visible group that the
user may not act in is ``NOT_FOUND`` (not a member) on a socket, where REST says 403."""


def origin_allowed(scope: Scope, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin: it must be listed, or be the node's own (the web app at /app/).

    Own means the Origin's host and port are the request's ``Host`` (ADR 0016). Non-browser
    clients send no Origin.
    """
    headers = dict(scope.get("headers", ()))
    origin = headers.get(b"origin")
    if origin is None:
        return True
    text = origin.decode("latin-1")
    if text in allowed:
        return True
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return bool(host) and text.lower().partition("://")[2] == host


class SocketEndpoint:
    """The ASGI app mounted at ``/api/v1/ws``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handshake, then hand over to a :class:`SocketRun`."""
        node = cast("Node", scope["state"]["node"])
        admission = cast(Admission, scope["state"]["admission"])
        if (await receive())["type"] != "websocket.connect":
            return
        if node.draining:
            await refuse(
                scope,
                send,
                503,
                ErrorCode.SERVICE_UNAVAILABLE,
                "This node is shutting down; reconnect",
                close_code=CloseCode.SERVICE_RESTART,
                headers=[(b"retry-after", b"1")],
            )
            return
        if not origin_allowed(scope, node.settings.cors_origins):
            await refuse(
                scope, send, 403, ErrorCode.FORBIDDEN, "This Origin may not open sockets here"
            )
            return
        if not admission.enter():
            await refuse_busy(scope, send)
            return
        offered = list(scope.get("subprotocols") or [])
        codec = negotiate(offered)
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if codec.subprotocol in offered:
            accept["subprotocol"] = codec.subprotocol
        try:
            await send(accept)
        except BaseException:
            admission.leave()
            raise
        writer = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
        run = SocketRun(node, admission, codec, receive, send, writer)
        admission.silent(run, run.evict)
        await run.serve()


class SocketShortcutMiddleware:
    """Middleware sending ``/api/v1/ws`` straight to the socket endpoint.

    Frames are the hot path: skipping the router and the exception wrapper around ``send``
    saves a few calls on every frame written.
    """

    def __init__(self, app: ASGIApp, path: str = "/api/v1/ws") -> None:
        self.app = app
        self.path = path
        self.endpoint = SocketEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch by scope."""
        if scope["type"] == "websocket" and scope["path"] == self.path:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SocketRun:
    """One accepted socket, from ``auth`` to close."""

    __slots__ = (
        "admission",
        "codec",
        "conn",
        "domain",
        "evicted",
        "expiry",
        "hub",
        "node",
        "receive",
        "send",
        "session",
        "settings",
        "task",
        "writer",
    )

    def __init__(
        self,
        node: Node,
        admission: Admission,
        codec: Codec,
        receive: Receive,
        send: Send,
        writer: FrameWriter | None = None,
    ) -> None:
        settings = self.settings = node.settings
        self.node = node
        self.admission: Admission | None = admission
        self.domain = node.domain
        self.hub = node.hub
        self.writer = writer
        self.codec = codec
        self.receive = receive
        self.send = send
        self.session = Session(
            session_id=uuid.uuid4().hex,
            heartbeat_s=settings.ws_heartbeat_s,
            budget=FrameBudget(settings.ws_frame_rate, settings.ws_frame_burst),
        )
        self.conn: Connection | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.task = asyncio.current_task()
        self.evicted = False

    async def serve(self) -> None:
        """Authenticate, then run the frame loop until either side closes."""
        try:
            conn = await self._authenticate_first()
            self._admitted()
            if conn is not None:
                await self._loop(conn)
        except asyncio.CancelledError:
            if self.evicted:
                await self._close_now(CloseCode.TRY_AGAIN_LATER, "busy; retry shortly")
            elif self.conn is None or self.conn.close_code is None:
                raise
        finally:
            self._admitted()
            await self._cleanup()

    def evict(self) -> None:
        """Make room on a full node: a socket that said nothing yet is closed 1013."""
        self.evicted = True
        if self.task is not None:
            self.task.cancel()

    def _admitted(self) -> None:
        """The socket left admission (ready, refused or gone): count it out, once."""
        if self.admission is not None:
            self.admission.leave(self)
            self.admission = None

    async def _authenticate_first(self) -> Connection | None:
        timeout = self.settings.ws_auth_timeout_s
        try:
            message = await asyncio.wait_for(self.receive(), timeout)
        except TimeoutError:
            await self._close_now(CloseCode.UNAUTHORIZED, f"no auth frame within {timeout:g} s")
            return None
        if self.admission is not None:
            self.admission.spoke(self)
        frame = await self._decode(message, first=True)
        if frame is None:
            return None
        effect = self.session.first(frame)
        if isinstance(effect, Close):
            await self._close_now(effect.code, effect.reason)
            return None
        return await self._open(effect)

    async def _open(self, effect: Authenticate) -> Connection | None:
        try:
            async with self.admission.slots if self.admission else contextlib.nullcontext():
                admitted = await self._admit(effect.token)
        except AppError:
            await self._close_now(CloseCode.UNAUTHORIZED, "invalid or expired token")
            return None
        except Exception as exc:
            if as_unavailable(exc) is not None:
                await self._close_now(
                    CloseCode.SERVICE_RESTART, "service unavailable; retry shortly"
                )
            else:  # a bug: logged, and the socket closed with a reason rather than cut
                log.exception("socket authentication failed")
                await self._close_now(CloseCode.INTERNAL_ERROR, INTERNAL_MESSAGE)
            return None
        if admitted is None:
            await self._close_now(CloseCode.CONNECTION_LIMIT, "too many connections for this user")
            return None
        conn, principal = admitted
        self.conn = conn
        user_id_var.set(str(principal.user_id))
        self._run(self.session.authenticated(principal.user_id, principal.expires_at, effect.ref))
        self._arm_expiry(principal.accepted_until)
        return conn

    async def _admit(self, token: str) -> tuple[Connection, Principal] | None:
        """Authenticate and take one of the user's socket slots; None when none is free.

        Raises:
            AppError: an invalid, expired or revoked token.
        """
        principal = await self.node.authenticate(token)
        settings = self.settings
        conn = Connection(
            self.send,
            self.codec,
            principal.user_id,
            self.session.session_id,
            settings.ws_queue_max_frames,
            settings.ws_queue_max_bytes,
            on_closed=self._on_closed,
            writer=self.writer,
            cork=self.hub.cork,
        )
        return (conn, principal) if await self.hub.admit(conn) else None

    async def _loop(self, conn: Connection) -> None:
        while self.session.phase is not Phase.CLOSED:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = await self._decode(message, first=False)
            if frame is not None:
                FRAMES.add("in", str(frame.__struct_config__.tag))
                for effect in self.session.handle(frame, time.monotonic()):
                    await self._carry_out(conn, effect)
        await conn.closed.wait()  # the session closed it: the close frame goes out first

    async def _decode(self, message: Message, *, first: bool) -> ClientFrames | None:
        if message["type"] != "websocket.receive":
            return None
        data = message.get("bytes") if self.codec.binary else message.get("text")
        if data is None:
            await self._close(CloseCode.UNSUPPORTED_DATA, "wrong frame type for the subprotocol")
            return None
        try:
            return self.codec.decode(data)
        except FatalFrame as exc:
            await self._close(exc.close_code, exc.reason)
        except InvalidFrame as exc:
            if first:
                await self._close(CloseCode.UNAUTHORIZED, "the first frame must be auth")
            else:
                self._run(self.session.invalid(exc, time.monotonic()))
        except Exception:  # a bug: logged, and the socket closed with a reason, not cut
            log.exception("a client frame could not be decoded")
            await self._close(CloseCode.INTERNAL_ERROR, INTERNAL_MESSAGE)
        return None

    async def _carry_out(self, conn: Connection, effect: Effect) -> None:
        try:
            await self._dispatch(conn, effect)
        except RateLimited:
            self._run(self.session.rate_limited(getattr(effect, "ref", None), time.monotonic()))
        except AppError as exc:
            code = SOCKET_CODES.get(exc.code, exc.code)
            self._run([self.session.error(code, exc.message, getattr(effect, "ref", None))])
        except Exception as exc:
            unavailable = as_unavailable(exc)
            if unavailable is None:  # a bug: logged and answered; the socket stays open
                log.exception("socket frame failed", extra={"frame": type(effect).__name__})
                code, message = ErrorCode.INTERNAL_ERROR, INTERNAL_MESSAGE
            else:
                code, message = ErrorCode.SERVICE_UNAVAILABLE, unavailable.message
            self._run([self.session.error(code, message, getattr(effect, "ref", None))])

    async def _dispatch(self, conn: Connection, effect: Effect) -> None:
        match effect:
            case Reply() | Close():
                self._run([effect])
            case DoSend(group_id=group, body=body, client_msg_id=cmid, ref=ref):
                _, accepted = await self.domain.pipeline.submit(conn.user_id, group, body, cmid)
                conn.reply(
                    Ack(
                        client_msg_id=cmid,
                        message_id=accepted.message_id,
                        seq=accepted.seq,
                        created_at=accepted.created_at,
                        **_ref(ref),
                    )
                )
            case DoSubscribe(group_id=group, since_seq=since, ref=ref, presence=presence):
                await self.hub.subscribe(conn, group, since, ref, presence)
            case DoUnsubscribe(group_id=group, ref=ref):
                if await self.hub.unsubscribe(conn, group):
                    conn.reply(Unsubscribed(group_id=group, **_ref(ref)))
                else:
                    self._run(
                        [
                            self.session.error(
                                ErrorCode.NOT_SUBSCRIBED, "Not subscribed to this group", ref
                            )
                        ]
                    )
            case DoTyping(group_id=group):
                await self.hub.typing(conn, group)
            case DoRead(group_id=group, seq=seq):
                await self.domain.messages.mark_read(
                    conn.user_id, group, seq, exclude=conn.session_id
                )
            case Authenticate(token=token, ref=ref):
                await self._refresh(token, ref)

    async def _refresh(self, token: str, ref: object) -> None:
        try:
            principal = await self.node.authenticate(token)
        except AppError:
            await self._close(CloseCode.UNAUTHORIZED, "invalid refresh token")
            return
        self._run(self.session.authenticated(principal.user_id, principal.expires_at, ref))  # type: ignore[arg-type]
        self._arm_expiry(principal.accepted_until)

    def _run(self, effects: list[Effect]) -> None:
        """Carry out effects that need no service: replies and closes."""
        for effect in effects:
            if isinstance(effect, Reply) and self.conn is not None:
                self.conn.reply(effect.frame)
            elif isinstance(effect, Close) and self.conn is not None:
                self.conn.close(effect.code, effect.reason)

    def _arm_expiry(self, expires_at: float) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, expires_at - time.time())
        conn = self.conn
        if conn is not None:
            self.expiry = asyncio.get_running_loop().call_later(
                delay, conn.close, CloseCode.UNAUTHORIZED, "token expired"
            )

    def _on_closed(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _close(self, code: int, reason: str) -> None:
        if self.conn is not None:
            self.conn.close(code, reason)
            await self.conn.closed.wait()
        else:
            await self._close_now(code, reason)
        self.session.phase = Phase.CLOSED

    async def _close_now(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "websocket.close", "code": code, "reason": reason})

    async def _cleanup(self) -> None:
        """Release the socket's presence and slot; the last thing a socket's task does.

        A server shutting down may cancel it when its grace period is over: the socket is
        gone either way, and its leases expire by themselves (``WS_LEASE_TTL_S``), so that
        cancellation ends the task quietly instead of as an error.
        """
        if self.expiry is not None:
            self.expiry.cancel()
        if self.conn is None:
            return
        try:
            with contextlib.suppress(Exception):
                await self.hub.release(self.conn)
            await self.conn.stop()
        except asyncio.CancelledError:
            log.info("socket clean-up cut short by the shutdown; its leases will expire")


def _ref(ref: object) -> dict[str, Any]:
    return {} if ref is None else {"ref": ref}
