"""The message log: the one atomic step that makes a message durable, ordered and visible.

``append`` rate-limits the author, answers a repeated ``client_msg_id`` with the first ack,
assigns the group's next ``seq``, keeps the message in the group's recovery window, queues it
for persistence, and publishes it on the bus, all at once. Two implementations: Redis
(:mod:`server.realtime.redis_log`, one Lua script) and an in-process twin
(:mod:`server.realtime.memory_log`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from protocol.codec import JSON
from protocol.frames import MessageCreated, MessageDeleted
from server.security.ratelimit import Rate

IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message waiting for its seq."""

    group_id: uuid.UUID
    author_id: uuid.UUID
    message_id: uuid.UUID
    body: str
    client_msg_id: str
    created_at: datetime

    def frame_template(self) -> tuple[bytes, bytes]:
        """The JSON ``message`` frame split around its seq, so the seq can be filled in last."""
        encoded = JSON.encode(
            MessageCreated(
                group_id=self.group_id,
                seq=0,
                message_id=self.message_id,
                author_id=self.author_id,
                body=self.body,
                created_at=self.created_at,
                client_msg_id=self.client_msg_id,
            )
        )
        prefix, _, suffix = encoded.partition(b'"seq":0,')
        return prefix + b'"seq":', b"," + suffix

    def row(self, seq: int) -> dict[str, Any]:
        """The ``messages`` row of this message once it has ``seq``."""
        return {
            "id": self.message_id,
            "group_id": self.group_id,
            "seq": seq,
            "author_id": self.author_id,
            "body": self.body,
            "client_msg_id": self.client_msg_id,
            "created_at": self.created_at,
            "deleted_at": None,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    """The ack of an append: the first one, when ``duplicate``."""

    seq: int
    message_id: uuid.UUID
    created_at: datetime
    duplicate: bool


@dataclass(frozen=True, slots=True)
class PersistEntry:
    """A logged message waiting to be written to the database."""

    entry_id: str
    row: dict[str, Any]
    logged_at: float


@dataclass(frozen=True, slots=True)
class Recent:
    """A message frame from the recovery window."""

    seq: int
    frame: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class Replay:
    """What a re-subscribing client missed: frames in seq order, or nothing and ``False``."""

    last_seq: int
    frames: list[Recent]
    recovered: bool


class MessageLog(Protocol):
    """Where messages become durable and visible."""

    async def append(self, message: NewMessage, rate: Rate) -> Accepted:
        """Make ``message`` durable, give it a seq, publish it.

        Raises:
            RateLimited: the author is over the message rate.
        """
        ...

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The highest seq assigned in the group."""
        ...

    async def recent(self, group_id: uuid.UUID, after_seq: int, limit: int) -> list[Recent]:
        """Frames of the recovery window with seq > ``after_seq``, oldest first."""
        ...

    @property
    def partitions(self) -> int:
        """How many persistence streams the log has (each drained by one lease holder)."""
        ...

    async def pending(
        self, partition: int, consumer: str, count: int, block_s: float, *, own: bool = True
    ) -> list[PersistEntry]:
        """Entries of ``partition`` to persist, waiting up to ``block_s`` for new ones.

        The consumer's own unacknowledged entries come first, unless ``own`` is False.
        """
        ...

    async def adopt(self, partition: int, consumer: str) -> int:
        """Take over what earlier readers of ``partition`` left unacknowledged; say how many."""
        ...

    async def jump(self, group_id: uuid.UUID) -> None:
        """Resume the group's numbering above the database (it holds seqs handed out again)."""
        ...

    async def acknowledge(self, partition: int, entry_ids: list[str]) -> None:
        """Mark entries of ``partition`` persisted."""
        ...

    async def lag(self) -> tuple[int, float]:
        """Entries not yet persisted, and the age in seconds of the oldest."""
        ...

    async def close(self) -> None:
        """The node is stopping and its persister has flushed."""
        ...

    async def erase_author(
        self, author_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> int:
        """Erase an author's messages from every copy the log holds; say how many.

        Their frames in the recovery windows of ``group_ids`` (and of any group where their
        messages still wait for persistence) become :func:`tombstone` frames; entries waiting
        for persistence become tombstone rows (empty body, no author, ``deleted_at``); their
        idempotency records and message-rate state go.
        """
        ...

    async def revise(self, group_id: uuid.UUID, seq: int, frame: bytes) -> bool:
        """Put ``frame`` in place of message ``seq``'s in the recovery window.

        After an edit or a deletion, so that a replay shows what history shows. False when
        the window no longer holds the message.
        """
        ...


def tombstone(group_id: uuid.UUID, message_id: uuid.UUID, seq: int) -> bytes:
    """What an erased message leaves in a recovery window: its ``message_deleted`` frame."""
    return JSON.encode(MessageDeleted(group_id=group_id, message_id=message_id, seq=seq))


_created = msgspec.json.Decoder(MessageCreated)


def tombstoned(recent: Recent) -> Recent:
    """The recovery-window entry that takes the place of an erased message's."""
    message = _created.decode(recent.frame)
    frame = tombstone(message.group_id, message.message_id, recent.seq)
    return Recent(recent.seq, frame, recent.created_ms)


def author_marker(author_id: uuid.UUID) -> bytes:
    """The bytes that name an author inside a JSON ``message`` frame.

    Unambiguous: a body cannot hold them, since its quotes are escaped twice (HTML, JSON).
    """
    return f'"author_id":"{author_id}"'.encode()


def ack_value(seq: int, message_id: uuid.UUID, created_at: datetime) -> str:
    """What the idempotency record stores: enough to repeat the first ack."""
    return f"{seq}|{message_id}|{created_at.isoformat()}"


def parse_ack(value: str) -> Accepted:
    """Rebuild a duplicate's ack from its idempotency record."""
    seq, message_id, created = value.split("|", 2)
    return Accepted(int(seq), uuid.UUID(message_id), datetime.fromisoformat(created), True)


def utc_from_ms(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)
