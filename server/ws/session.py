"""One connection's state and decisions, with no I/O.

The endpoint feeds decoded frames in and carries the returned effects out (send a frame,
close, or ask a service something and report back). Everything here is testable with plain
calls and a number for the time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from msgspec import structs

from protocol.codec import InvalidFrame
from protocol.errors import CloseCode, ErrorCode
from protocol.frames import (
    Auth,
    ClientFrames,
    Error,
    Ping,
    Pong,
    PresenceMode,
    Read,
    Ready,
    Ref,
    Refresh,
    Send,
    ServerFrame,
    Subscribe,
    Typing,
    Unsubscribe,
)


class Phase(Enum):
    """Where the connection is in its life."""

    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``frame`` on this socket."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket with ``code``."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Verify ``token`` (first frame, or an in-band ``refresh``)."""

    token: str
    ref: Ref | None
    first: bool


@dataclass(frozen=True, slots=True)
class DoSubscribe:
    """Subscribe to a group, replaying after ``since_seq``; presence as asked."""

    group_id: uuid.UUID
    since_seq: int | None
    ref: Ref | None
    presence: PresenceMode = "each"


@dataclass(frozen=True, slots=True)
class DoUnsubscribe:
    """End a subscription."""

    group_id: uuid.UUID
    ref: Ref | None


@dataclass(frozen=True, slots=True)
class DoSend:
    """Send a message through the pipeline."""

    group_id: uuid.UUID
    body: str
    client_msg_id: str
    ref: Ref | None


@dataclass(frozen=True, slots=True)
class DoTyping:
    """Tell the group the user is typing."""

    group_id: uuid.UUID
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class DoRead:
    """Move the read marker."""

    group_id: uuid.UUID
    seq: int
    ref: Ref | None = None


Effect = Reply | Close | Authenticate | DoSubscribe | DoUnsubscribe | DoSend | DoTyping | DoRead


@dataclass(slots=True)
class FrameBudget:
    """GCRA over all frames of one socket: ``rate`` per second, bursting to ``burst``."""

    rate: float
    burst: int
    tat: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one frame; False when over budget."""
        interval = 1.0 / self.rate
        tat = max(self.tat, now)
        if tat - now > interval * (self.burst - 1) + 1e-9:  # tolerate float rounding
            return False
        self.tat = tat + interval
        return True


@dataclass(slots=True)
class Session:
    """The decisions of one connection."""

    session_id: str
    heartbeat_s: float
    budget: FrameBudget = field(default_factory=lambda: FrameBudget(50.0, 100))
    strike_window_s: float = 10.0
    max_strikes: int = 10
    phase: Phase = Phase.AUTHENTICATING
    user_id: uuid.UUID | None = None
    expires_at: float = 0.0
    _strikes: list[float] = field(default_factory=list)

    def first(self, frame: ClientFrames) -> Authenticate | Close:
        """The first frame must be ``auth``."""
        if isinstance(frame, Auth):
            return Authenticate(frame.token, frame.ref, first=True)
        self.phase = Phase.CLOSED
        return Close(CloseCode.UNAUTHORIZED, "the first frame must be auth")

    def authenticated(self, user_id: uuid.UUID, expires_at: float, ref: Ref | None) -> list[Effect]:
        """A token was verified: the socket is (still) ready."""
        if self.user_id is not None and user_id != self.user_id:
            self.phase = Phase.CLOSED
            return [Close(CloseCode.UNAUTHORIZED, "a refresh token must belong to the same user")]
        self.phase, self.user_id, self.expires_at = Phase.READY, user_id, expires_at
        ready = Ready(user_id=user_id, session_id=self.session_id, heartbeat_s=self.heartbeat_s)
        return [Reply(_with_ref(ready, ref))]

    def handle(self, frame: ClientFrames, now: float) -> list[Effect]:
        """What a frame from a ready connection means."""
        if not self.budget.take(now):
            return self.rate_limited(frame.ref, now)
        return _HANDLERS[type(frame)](self, frame)

    def _ping(self, frame: Ping) -> list[Effect]:
        return [Reply(_with_ref(Pong(), frame.ref))]

    def _subscribe(self, frame: Subscribe) -> list[Effect]:
        return [DoSubscribe(frame.group_id, frame.since_seq, frame.ref, frame.presence)]

    def _unsubscribe(self, frame: Unsubscribe) -> list[Effect]:
        return [DoUnsubscribe(frame.group_id, frame.ref)]

    def _send(self, frame: Send) -> list[Effect]:
        return [DoSend(frame.group_id, frame.body, frame.client_msg_id, frame.ref)]

    def _typing(self, frame: Typing) -> list[Effect]:
        return [DoTyping(frame.group_id, frame.ref)]

    def _read(self, frame: Read) -> list[Effect]:
        return [DoRead(frame.group_id, frame.seq, frame.ref)]

    def _refresh(self, frame: Refresh) -> list[Effect]:
        return [Authenticate(frame.token, frame.ref, first=False)]

    def _auth_again(self, frame: Auth) -> list[Effect]:
        return [
            self.error(ErrorCode.VALIDATION_ERROR, "Already authenticated; use refresh", frame.ref)
        ]

    def invalid(self, problem: InvalidFrame, now: float) -> list[Effect]:
        """A well-formed frame with bad content: ``VALIDATION_ERROR``, the socket kept open.

        It spends the frame budget as any frame does, so a flood of them is rate-limited
        and, persisting, closed with 4008.
        """
        if not self.budget.take(now):
            return self.rate_limited(problem.ref, now)
        return [self.error(ErrorCode.VALIDATION_ERROR, problem.message, problem.ref)]

    def rate_limited(self, ref: Ref | None, now: float) -> list[Effect]:
        """Over a rate: ``RATE_LIMITED``; persisting means flooding and ends with 4008."""
        return self._strike(now) or [self.error(ErrorCode.RATE_LIMITED, "Slow down", ref)]

    @staticmethod
    def error(code: ErrorCode, message: str, ref: Ref | None) -> Reply:
        """An ``error`` frame echoing ``ref``."""
        return Reply(_with_ref(Error(code=code.value, message=message), ref))

    def _strike(self, now: float) -> list[Effect]:
        self._strikes = [t for t in self._strikes if now - t < self.strike_window_s]
        self._strikes.append(now)
        if len(self._strikes) > self.max_strikes:
            self.phase = Phase.CLOSED
            return [Close(CloseCode.FLOODING, "flooding")]
        return []


_HANDLERS: dict[type[ClientFrames], Callable[[Session, Any], list[Effect]]] = {
    Ping: Session._ping,
    Subscribe: Session._subscribe,
    Unsubscribe: Session._unsubscribe,
    Send: Session._send,
    Typing: Session._typing,
    Read: Session._read,
    Refresh: Session._refresh,
    Auth: Session._auth_again,
}
"""Dispatch by frame type (rule 9 of docs/architecture/style.md)."""


def _with_ref(frame: ServerFrame, ref: Ref | None) -> ServerFrame:
    if ref is None:
        return frame
    return structs.replace(frame, ref=ref)
