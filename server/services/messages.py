"""Messages: the one send pipeline (REST and socket), history, edits, deletions, read state."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from protocol.codec import JSON
from protocol.frames import (
    MAX_BODY_CHARS,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ReadMarker,
)
from protocol.objects import Message as MessageObject
from protocol.objects import UnreadCount
from server.errors import Forbidden, NotFound, ServiceUnavailable
from server.realtime.log import Accepted, MessageLog, NewMessage, Recent
from server.security.ratelimit import Rate
from server.security.sanitize import clean_text
from server.services import policy
from server.services.clock import Clock
from server.services.groups import GroupService
from server.services.membership import MembershipCache
from server.services.notify import Notifier
from server.services.policy import Action
from server.services.views import message_view
from server.store import groups as group_repo
from server.store import messages as repo
from server.store.db import Database
from server.store.listing import ListQuery, ListSpec, fetch_page
from server.store.models import Message

MESSAGE_LIST = ListSpec(
    sorts={"seq": Message.seq, "created_at": Message.created_at},
    default_sort="-seq",
    tiebreak=Message.seq,
    search=(Message.body,),
    created=Message.created_at,
)


def created_frame(row: Message) -> MessageCreated:
    """The ``message`` frame of a stored message."""
    return MessageCreated(
        group_id=row.group_id,
        seq=row.seq,
        message_id=row.id,
        author_id=row.author_id,
        body=row.body,
        created_at=row.created_at,
        client_msg_id=row.client_msg_id,
    )


def clean_body(body: str) -> str:
    """Sanitise a message body: 1..4,000 characters, not blank."""
    return clean_text(body, field="body", min_length=1, max_length=MAX_BODY_CHARS, not_blank=True)


@dataclass(frozen=True, slots=True)
class Replay:
    """What a re-subscribing client missed: frames in seq order, or nothing and ``False``."""

    last_seq: int
    frames: list[Recent]
    recovered: bool


class MessagePipeline:
    """The single entry point for sending: sanitise, check membership, append to the log."""

    def __init__(
        self,
        log: MessageLog,
        membership: MembershipCache,
        db: Database,
        clock: Clock,
        *,
        rate: Rate,
        window: int,
        window_s: int,
    ) -> None:
        self._log = log
        self._membership = membership
        self._db = db
        self._clock = clock
        self._rate = rate
        self._window = window
        self._window_s = window_s

    @property
    def log(self) -> MessageLog:
        """The message log behind the pipeline."""
        return self._log

    async def submit(
        self, author_id: uuid.UUID, group_id: uuid.UUID, body: str, client_msg_id: str
    ) -> tuple[NewMessage, Accepted]:
        """Send a message; the returned ack means it is durable.

        Raises:
            ValidationFailed: empty or too long body.
            NotFound: not a member.
            RateLimited: over the author's message rate.
            ServiceUnavailable: the log cannot make it durable right now.
        """
        text = clean_body(body)
        await self._membership.require_member(group_id, author_id)
        now = self._clock.now()
        message = NewMessage(
            group_id=group_id,
            author_id=author_id,
            message_id=uuid.uuid4(),
            body=text,
            client_msg_id=client_msg_id,
            created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        )
        return message, await self._log.append(message, self._rate)

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The highest seq assigned in the group."""
        return await self._log.last_seq(group_id)

    async def replay(self, group_id: uuid.UUID, since_seq: int, upto: int) -> Replay:
        """Missed messages in ``(since_seq, upto]``: from the recovery window, else the database.

        More missed than the window holds (count or age): nothing, and not recovered.
        """
        if since_seq >= upto:
            return Replay(upto, [], True)
        if upto - since_seq > self._window:
            return Replay(upto, [], False)
        recent = [
            f for f in await self._log.recent(group_id, since_seq, self._window) if f.seq <= upto
        ]
        older: list[Recent] = []
        oldest_ms = recent[0].created_ms if recent else None
        first = recent[0].seq if recent else upto + 1
        if first > since_seq + 1:
            found = await self._from_database(group_id, since_seq, first - 1)
            if found is None:
                return Replay(upto, [], False)
            older, oldest_ms = found
        horizon = (self._clock.time() - self._window_s) * 1000
        if oldest_ms is None or oldest_ms < horizon:
            return Replay(upto, [], False)
        return Replay(upto, older + recent, True)

    async def _from_database(
        self, group_id: uuid.UUID, after: int, upto: int
    ) -> tuple[list[Recent], int] | None:
        """Frames of ``(after, upto]`` from the database, if it holds all of them."""
        async with self._db.session() as session:
            rows = await repo.messages_after(session, group_id, after, upto)
        if [row.seq for row in rows] != list(range(after + 1, upto + 1)):
            return None
        frames = [
            Recent(row.seq, JSON.encode(created_frame(row)), int(row.created_at.timestamp() * 1000))
            for row in rows
            if row.deleted_at is None
        ]
        return frames, int(rows[0].created_at.timestamp() * 1000)


class MessageService:
    """History, REST sends, edits, deletions and read markers."""

    def __init__(
        self,
        db: Database,
        pipeline: MessagePipeline,
        groups: GroupService,
        membership: MembershipCache,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self._db = db
        self._pipeline = pipeline
        self._groups = groups
        self._membership = membership
        self._notifier = notifier
        self._clock = clock

    async def post(
        self, author_id: uuid.UUID, group_id: uuid.UUID, body: str, client_msg_id: str
    ) -> tuple[MessageObject, bool]:
        """Send over REST; returns the message and whether it is new (False: a repeat).

        The row is also written here, idempotently, so REST history shows it at once.
        """
        async with self._db.session() as session:
            await self._groups.authorize(session, group_id, author_id, Action.POST_MESSAGE)
        message, accepted = await self._pipeline.submit(author_id, group_id, body, client_msg_id)
        if accepted.duplicate:
            return await self._first(group_id, author_id, client_msg_id), False
        async with self._db.session() as session, session.begin():
            await repo.insert_ignoring_duplicates(session, [message.row(accepted.seq)])
        row = message.row(accepted.seq)
        return MessageObject(**{**row, "edited_at": None}), True

    async def history(
        self,
        viewer: uuid.UUID,
        group_id: uuid.UUID,
        query: ListQuery,
        after_seq: int | None,
        before_seq: int | None,
    ) -> tuple[list[MessageObject], int]:
        """A page of a group's messages."""
        statement = repo.messages_of(group_id)
        if after_seq is not None:
            statement = statement.where(Message.seq > after_seq)
        if before_seq is not None:
            statement = statement.where(Message.seq < before_seq)
        async with self._db.session() as session:
            await self._groups.authorize(session, group_id, viewer, Action.READ_MESSAGES)
            rows, total = await fetch_page(session, statement, query)
        return [message_view(row[0]) for row in rows], total

    async def edit(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID, body: str
    ) -> MessageObject:
        """Change one's own message.

        Raises:
            Forbidden: not the author.
        """
        text = clean_body(body)
        async with self._db.session() as session, session.begin():
            await self._groups.authorize(session, group_id, actor_id, Action.EDIT_OWN_MESSAGE)
            message = await self._find(session, group_id, message_id)
            if message.author_id != actor_id:
                raise Forbidden("Only the author can edit a message")
            message.body, message.edited_at = text, self._clock.now()
        frame = MessageEdited(
            group_id=group_id,
            message_id=message.id,
            seq=message.seq,
            body=text,
            edited_at=message.edited_at,
        )
        await self._notifier.to_group(group_id, frame)
        return message_view(message)

    async def delete(self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID) -> None:
        """Soft-delete: authors their own, owner and admins any.

        Raises:
            Forbidden: neither the author nor a manager.
        """
        async with self._db.session() as session, session.begin():
            loaded = await self._groups.authorize(session, group_id, actor_id, Action.READ_MESSAGES)
            message = await self._find(session, group_id, message_id)
            if not policy.can_delete_message(loaded.role, message.author_id == actor_id):
                raise Forbidden("Only the author, the owner or an admin can delete a message")
            message.deleted_at = self._clock.now()
        await self._notifier.to_group(
            group_id, MessageDeleted(group_id=group_id, message_id=message.id, seq=message.seq)
        )

    async def mark_read(
        self, user_id: uuid.UUID, group_id: uuid.UUID, seq: int, exclude: str = ""
    ) -> int:
        """Move the user's read marker; their other sockets are told."""
        await self._membership.require_member(group_id, user_id)
        seq = min(seq, await self._pipeline.last_seq(group_id))  # never past the last message
        async with self._db.session() as session, session.begin():
            marker = await group_repo.set_read_marker(session, group_id, user_id, seq)
        await self._notifier.to_user(
            user_id, ReadMarker(group_id=group_id, seq=marker), exclude=exclude
        )
        return marker

    async def unread(self, user_id: uuid.UUID) -> list[UnreadCount]:
        """Unread counts of every group of the user (zeros included)."""
        async with self._db.session() as session:
            rows = await group_repo.unread_counts(session, user_id)
        return [
            UnreadCount(group_id=g, unread=u, last_seq=s, last_read_seq=r) for g, u, s, r in rows
        ]

    async def _first(
        self, group_id: uuid.UUID, author_id: uuid.UUID, client_msg_id: str
    ) -> MessageObject:
        for _ in range(50):  # the first copy may still be on its way to the database
            async with self._db.session() as session:
                found = await repo.find_by_client_id(session, group_id, author_id, client_msg_id)
            if found is not None:
                return message_view(found)
            await asyncio.sleep(0.1)
        raise ServiceUnavailable("The first copy of this message is not stored yet; retry")

    @staticmethod
    async def _find(session: AsyncSession, group_id: uuid.UUID, message_id: uuid.UUID) -> Message:
        message = await repo.get_message(session, group_id, message_id)
        if message is None:
            raise NotFound("Message not found")
        return message
