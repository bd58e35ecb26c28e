r"""What travels on the bus between nodes: an already-encoded frame plus routing data.

Wire form: ``b"<kind> <seq> <exclude> <subject>\n" + frame``, where ``frame`` is the JSON
encoding of a server frame, made once by the publishing node (or by the Redis append
script, which is why the header is plain text). ``-`` stands for an empty field. Receiving
nodes forward the frame bytes as they are to JSON sockets and re-encode once for MessagePack.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum

from protocol.codec import JSON
from protocol.frames import ServerFrame


class Kind(IntEnum):
    """How the hub treats an envelope."""

    MESSAGE = 0
    """A seq-numbered chat message: ordered, recoverable, never dropped silently."""
    EPHEMERAL = 1
    """Typing and presence: dropped first when a queue is full."""
    EVENT = 2
    """Edits, deletions, membership, invites, assignments, read markers."""
    DISCONNECT = 3
    """Close the user's sockets (password changed, account deleted)."""
    RECHECK = 4
    """A member's membership changed: re-check it before delivering more."""
    PRESENCE = 5
    """A node's batched presence changes of a group (a ``presence_diff`` frame)."""


class BadEnvelope(ValueError):
    """A bus payload that is not an envelope."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded bus payload."""

    kind: Kind
    seq: int
    exclude: str
    subject: str
    frame: bytes


def pack(
    kind: Kind,
    frame: ServerFrame | bytes | None = None,
    *,
    seq: int = 0,
    exclude: str = "",
    subject: uuid.UUID | str | None = None,
) -> bytes:
    """Encode an envelope; a frame object is JSON-encoded here."""
    body = frame if isinstance(frame, bytes) else (JSON.encode(frame) if frame is not None else b"")
    head = f"{int(kind)} {seq} {exclude or '-'} {subject or '-'}\n"
    return head.encode() + body


def unpack(payload: bytes) -> Envelope:
    """Decode an envelope.

    Raises:
        BadEnvelope: malformed payload (the hub logs and drops it).
    """
    head, sep, frame = payload.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 4:  # noqa: PLR2004 - kind, seq, exclude, subject
        raise BadEnvelope("not an envelope")
    try:
        kind, seq = Kind(int(parts[0])), int(parts[1])
    except ValueError as exc:
        raise BadEnvelope(str(exc)) from exc
    exclude, subject = (p.decode("ascii", "replace") for p in parts[2:])
    return Envelope(
        kind, seq, "" if exclude == "-" else exclude, "" if subject == "-" else subject, frame
    )


CREDENTIALS_CHANNEL = "credentials"
"""Every node listens here: a user id whose password changed or whose account went."""

ROSTERS_CHANNEL = "rosters"
"""Every node listens here: a group id whose members, roles or visibility changed.

A group's own channel reaches only nodes with a subscriber of it; a node serving a member's
unsubscribed socket (sends need no subscription) or REST calls caches the group's members too.
"""


def group_channel(group_id: uuid.UUID | str) -> str:
    """The bus channel of a group."""
    return f"g:{group_id}"


def user_channel(user_id: uuid.UUID | str) -> str:
    """The bus channel of a user (their sockets on every node)."""
    return f"u:{user_id}"


def channel_owner(channel: str) -> uuid.UUID | None:
    """The group or user a channel belongs to (None for node-wide channels)."""
    kind, _, rest = channel.partition(":")
    if kind not in ("g", "u") or not rest:
        return None
    try:
        return uuid.UUID(rest)
    except ValueError:
        return None
