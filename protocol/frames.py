"""Every socket frame as a frozen msgspec Struct on one tagged base class.

Frames are flat JSON objects: ``type`` plus fields. Client frames may carry a ``ref`` that
comes back on the reply or error. New fields get defaults and go last.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from protocol.objects import Assignment, Invite, Notification, Role

MAX_BODY_CHARS = 4000
MAX_FRAME_BYTES = 64 * 1024

Ref = str | int
Body = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        description=(
            "Message text: 1..4000 characters, counted in code points as sent, and not only "
            "spaces or control characters (the server checks, answering VALIDATION_ERROR)."
        ),
        extra_json_schema={"maxLength": MAX_BODY_CHARS},
    ),
]
CONTROL_FREE = r"^(?![\s\S]*[\x00-\x1f\x7f-\x9f])"
"""No C0 or C1 control character, nor DEL (PostgreSQL cannot even store a NUL). A lookahead,
not ``[^...]*$``: Python's ``$`` also matches before a trailing newline, which let one in."""
ClientMsgId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=CONTROL_FREE,
        description="Client-chosen idempotency key: 1..64 characters, no control characters.",
        extra={
            "message": "client_msg_id must be 1..64 characters, none of them a control character",
            "suggestion": "Use a UUID",
        },
    ),
]
Seq = Annotated[int, msgspec.Meta(ge=0, description="A group's message sequence number.")]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192, description="An access JWT.")]


class Frame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every frame; ``type`` is the tag."""


# --- client -> server ------------------------------------------------------------------


class ClientFrame(Frame, frozen=True, kw_only=True):
    """A frame sent by a client."""

    ref: Ref | None = None


class Auth(ClientFrame, frozen=True, kw_only=True, tag="auth"):
    """First frame of a connection; answered with ``ready``."""

    token: Token


PresenceMode = Literal["each", "diff", "none"]
"""How a subscriber hears about presence: a ``presence`` frame per change (while the group
has at most 100 members online), batched ``presence_diff`` frames, or not at all."""


class Subscribe(ClientFrame, frozen=True, kw_only=True, tag="subscribe"):
    """Receive a group's events; with ``since_seq``, replay what was missed first."""

    group_id: uuid.UUID
    since_seq: Seq | None = None
    presence: PresenceMode = "each"


class Unsubscribe(ClientFrame, frozen=True, kw_only=True, tag="unsubscribe"):
    """Stop receiving a group's events."""

    group_id: uuid.UUID


class Send(ClientFrame, frozen=True, kw_only=True, tag="send"):
    """Post a message; answered with ``ack`` once it is durable."""

    group_id: uuid.UUID
    body: Body
    client_msg_id: ClientMsgId


class Typing(ClientFrame, frozen=True, kw_only=True, tag="typing"):
    """The user is typing in a group (ephemeral, throttled)."""

    group_id: uuid.UUID


class Read(ClientFrame, frozen=True, kw_only=True, tag="read"):
    """Move the user's read marker in a group."""

    group_id: uuid.UUID
    seq: Seq


class Refresh(ClientFrame, frozen=True, kw_only=True, tag="refresh"):
    """Replace the connection's access token before it expires."""

    token: Token


class Ping(ClientFrame, frozen=True, kw_only=True, tag="ping"):
    """Application-level ping, answered with ``pong``."""


ClientFrames = Auth | Subscribe | Unsubscribe | Send | Typing | Read | Refresh | Ping


# --- server -> client ------------------------------------------------------------------


class ServerFrame(Frame, frozen=True, kw_only=True):
    """A frame sent by the server."""


class Ready(ServerFrame, frozen=True, kw_only=True, tag="ready"):
    """Authenticated (or re-authenticated after ``refresh``)."""

    user_id: uuid.UUID
    session_id: str
    heartbeat_s: float
    ref: Ref | msgspec.UnsetType = msgspec.UNSET


class Subscribed(ServerFrame, frozen=True, kw_only=True, tag="subscribed"):
    """Subscription confirmed; ``recovered`` says whether a replay was complete."""

    group_id: uuid.UUID
    last_seq: int
    online: list[uuid.UUID]
    recovered: bool
    ref: Ref | msgspec.UnsetType = msgspec.UNSET


class Unsubscribed(ServerFrame, frozen=True, kw_only=True, tag="unsubscribed"):
    """Subscription ended."""

    group_id: uuid.UUID
    ref: Ref | msgspec.UnsetType = msgspec.UNSET


class Ack(ServerFrame, frozen=True, kw_only=True, tag="ack"):
    """The message is durable and has its ``seq``."""

    client_msg_id: str
    message_id: uuid.UUID
    seq: int
    created_at: datetime
    ref: Ref | msgspec.UnsetType = msgspec.UNSET


class Pong(ServerFrame, frozen=True, kw_only=True, tag="pong"):
    """Reply to ``ping``."""

    ref: Ref | msgspec.UnsetType = msgspec.UNSET


class MessageCreated(ServerFrame, frozen=True, kw_only=True, tag="message"):
    """A new message in a subscribed group."""

    group_id: uuid.UUID
    seq: int
    message_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    created_at: datetime
    client_msg_id: str


class MessageEdited(ServerFrame, frozen=True, kw_only=True, tag="message_edited"):
    """A message's body changed."""

    group_id: uuid.UUID
    message_id: uuid.UUID
    seq: int
    body: str
    edited_at: datetime


class MessageDeleted(ServerFrame, frozen=True, kw_only=True, tag="message_deleted"):
    """A message was deleted."""

    group_id: uuid.UUID
    message_id: uuid.UUID
    seq: int


class Presence(ServerFrame, frozen=True, kw_only=True, tag="presence"):
    """A user came online or went offline in a group."""

    group_id: uuid.UUID
    user_id: uuid.UUID
    status: Literal["online", "offline"]


class PresenceDiff(ServerFrame, frozen=True, kw_only=True, tag="presence_diff"):
    """Who came online and who went offline in a group since the last diff (batched)."""

    group_id: uuid.UUID
    online: list[uuid.UUID]
    offline: list[uuid.UUID]


class TypingNotice(ServerFrame, frozen=True, kw_only=True, tag="typing"):
    """Another member is typing."""

    group_id: uuid.UUID
    user_id: uuid.UUID


class ReadMarker(ServerFrame, frozen=True, kw_only=True, tag="read"):
    """The user read up to ``seq`` on another of their sockets."""

    group_id: uuid.UUID
    seq: int


class InviteNotice(ServerFrame, frozen=True, kw_only=True, tag="invite"):
    """The user was invited into a group."""

    invite: Invite


class AssignmentNotice(ServerFrame, frozen=True, kw_only=True, tag="assignment"):
    """An assignment of one of the user's groups changed."""

    action: Literal["created", "updated", "deleted"]
    assignment: Assignment


class MemberNotice(ServerFrame, frozen=True, kw_only=True, tag="member"):
    """Membership of a group changed."""

    group_id: uuid.UUID
    user_id: uuid.UUID
    action: Literal["joined", "left", "kicked", "role_changed"]
    role: Role | None


class NotificationNotice(ServerFrame, frozen=True, kw_only=True, tag="notification"):
    """A new notification for the user (pushed to each of their live sockets)."""

    notification: Notification


class Error(ServerFrame, frozen=True, kw_only=True, tag="error"):
    """A request failed; the socket stays open."""

    code: str
    message: str
    ref: Ref | msgspec.UnsetType = msgspec.UNSET


ServerFrames = (
    Ready
    | Subscribed
    | Unsubscribed
    | Ack
    | Pong
    | MessageCreated
    | MessageEdited
    | MessageDeleted
    | Presence
    | PresenceDiff
    | TypingNotice
    | ReadMarker
    | InviteNotice
    | AssignmentNotice
    | MemberNotice
    | NotificationNotice
    | Error
)

CLIENT_FRAME_TYPES: tuple[type[ClientFrame], ...] = (
    Auth,
    Subscribe,
    Unsubscribe,
    Send,
    Typing,
    Read,
    Refresh,
    Ping,
)
SERVER_FRAME_TYPES: tuple[type[ServerFrame], ...] = (
    Ready,
    Subscribed,
    Unsubscribed,
    Ack,
    Pong,
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    Presence,
    PresenceDiff,
    TypingNotice,
    ReadMarker,
    InviteNotice,
    AssignmentNotice,
    MemberNotice,
    NotificationNotice,
    Error,
)
