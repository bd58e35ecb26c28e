"""Messages: the one send pipeline (REST and socket), history, edits, deletions, read state."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.frames import (
    MAX_BODY_CHARS,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ReadMarker,
)
from protocol.objects import Message as MessageObject
from protocol.objects import UnreadCount
from server.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from server.realtime.log import Accepted, MessageLog, NewMessage
from server.security.ratelimit import Rate
from server.security.sanitize import clean_text
from server.services import policy
from server.services.access import GroupAccess, authorize
from server.services.clock import Clock
from server.services.mentions import mention_items
from server.services.notifications import NotificationOutbox
from server.services.notify import Notifier
from server.services.policy import Action
from server.services.views import message_view, replay_frame
from server.store import groups as group_repo
from server.store import messages as repo
from server.store import notifications as notification_repo
from server.store.db import Database
from server.store.listing import ListQuery, ListSpec, fetch_page
from server.store.models import Message, NotificationKind

log = logging.getLogger(__name__)
T = TypeVar("T")
STORE_WAIT_S = 3.0
"""How long a REST post waits for its message to reach history before answering anyway."""

MESSAGE_LIST = ListSpec(
    sorts={"seq": Message.seq, "created_at": Message.created_at},
    default_sort="-seq",
    tiebreak=Message.seq,
    search=(Message.body,),
    created=Message.created_at,
)


def clean_body(body: str) -> str:
    """Sanitise a message body: 1..4,000 characters, not blank."""
    return clean_text(body, field="body", min_length=1, max_length=MAX_BODY_CHARS, not_blank=True)


class Stored(Protocol):
    """Waits until a message is in history (:class:`server.realtime.persisted.PersistWatch`)."""

    def expect(self, message_id: uuid.UUID) -> None:
        """Start waiting for ``message_id``, before it is appended."""
        ...

    async def wait(self, message_id: uuid.UUID, timeout_s: float) -> bool:
        """Wait (bounded) until ``message_id`` is stored; False on timeout."""
        ...

    def discard(self, message_id: uuid.UUID) -> None:
        """Stop waiting for ``message_id``."""
        ...


class MessagePipeline:
    """The single entry point for sending (REST and socket): check, sanitise, append."""

    def __init__(self, log: MessageLog, access: GroupAccess, clock: Clock, *, rate: Rate) -> None:
        self._log = log
        self._access = access
        self._clock = clock
        self._rate = rate

    async def submit(
        self,
        author_id: uuid.UUID,
        group_id: uuid.UUID,
        body: str,
        client_msg_id: str,
        message_id: uuid.UUID | None = None,
    ) -> tuple[NewMessage, Accepted]:
        """Send a message; the returned ack means it is durable.

        Raises:
            NotFound: no such group, or a private one the author is not in.
            Forbidden: a public group the author is not in.
            ValidationFailed: empty or too long body.
            RateLimited: over the author's message rate.
            ServiceUnavailable: the log cannot make it durable right now.
        """
        await self._access.require(group_id, author_id, Action.POST_MESSAGE)
        text = clean_body(body)
        now = self._clock.now()
        message = NewMessage(
            group_id=group_id,
            author_id=author_id,
            message_id=message_id or uuid.uuid4(),
            body=text,
            client_msg_id=client_msg_id,
            created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        )
        return message, await self._log.append(message, self._rate)


class MessageService:
    """History, REST sends, edits, deletions and read markers."""

    def __init__(
        self,
        db: Database,
        pipeline: MessagePipeline,
        log: MessageLog,
        stored: Stored,
        access: GroupAccess,
        notifier: Notifier,
        outbox: NotificationOutbox,
        clock: Clock,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._pipeline = pipeline
        self._log = log
        self._stored = stored
        self._access = access
        self._notifier = notifier
        self._clock = clock

    async def post(
        self, author_id: uuid.UUID, group_id: uuid.UUID, body: str, client_msg_id: str
    ) -> tuple[MessageObject, bool]:
        """Send over REST; returns the message and whether it is new (False: a repeat).

        The answer waits (bounded) until a persister has stored the message, so that the
        caller's next request finds it in history.
        """
        message_id = uuid.uuid4()
        self._stored.expect(message_id)
        try:
            message, accepted = await self._pipeline.submit(
                author_id, group_id, body, client_msg_id, message_id
            )
        except BaseException:
            self._stored.discard(message_id)
            raise
        if accepted.duplicate:
            self._stored.discard(message_id)
            return await self._first(group_id, accepted), False
        if not await self._stored.wait(message_id, STORE_WAIT_S):
            log.warning("an acked message is not in history yet", extra={"seq": accepted.seq})
        row = message.row(accepted.seq)
        del row["deleted_at"]
        return MessageObject(**row, edited_at=None), True

    async def history(
        self,
        viewer: uuid.UUID,
        group_id: uuid.UUID,
        query: ListQuery,
        after_seq: int | None,
        before_seq: int | None,
    ) -> tuple[list[MessageObject], int]:
        """A page of a group's messages (a lag-tolerant read: history and its search)."""
        statement = repo.messages_of(group_id)
        if after_seq is not None:
            statement = statement.where(Message.seq > after_seq)
        if before_seq is not None:
            statement = statement.where(Message.seq < before_seq)
        async with self._db.read_session(for_user=viewer) as session:
            await authorize(session, group_id, viewer, Action.READ_MESSAGES)
            rows, total = await fetch_page(session, statement, query)
        return [message_view(row[0]) for row in rows], total

    async def edit(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID, body: str
    ) -> MessageObject:
        """Change one's own message; members it names for the first time are notified.

        A message sent a moment ago over a socket may not be in history yet: it is waited for.

        Raises:
            Forbidden: not the author.
        """
        text = clean_body(body)
        return await self._once_stored(
            actor_id, group_id, message_id, lambda: self._edit(actor_id, group_id, message_id, text)
        )

    async def _edit(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID, text: str
    ) -> MessageObject:
        async with self._db.session() as session, session.begin():
            await authorize(session, group_id, actor_id, Action.EDIT_OWN_MESSAGE)
            message = await self._find(session, group_id, message_id)
            if message.author_id != actor_id:
                raise Forbidden("Only the author can edit a message")
            message.body, message.edited_at = text, self._clock.now()
            await session.flush()  # the row lock first: a fan-out under way waits for it
            await notification_repo.revise_copies(
                session,
                NotificationKind.MENTION,
                str(message.id),
                msgspec.to_builtins(message_view(message)),
            )
            events = await self._stage_mentions(session, message)
        await self._outbox.release(events)
        await self._revise(message)
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
        """Soft-delete: authors their own, owner and admins any (waiting for one on its way).

        Raises:
            Forbidden: neither the author nor a manager.
        """
        await self._once_stored(
            actor_id, group_id, message_id, lambda: self._delete(actor_id, group_id, message_id)
        )

    async def _once_stored(
        self,
        actor_id: uuid.UUID,
        group_id: uuid.UUID,
        message_id: uuid.UUID,
        change: Callable[[], Awaitable[T]],
    ) -> T:
        """Run ``change``; if its message is not found but on its way, once it is stored."""
        try:
            return await change()
        except NotFound:
            if not await self._on_its_way(actor_id, group_id, message_id):
                raise
        return await change()

    async def _on_its_way(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID
    ) -> bool:
        """Wait (bounded) for a message not in history while the group has some on the way.

        Acked messages reach history behind the log (a socket send is answered before it is
        stored). Only a member waits, and only while the log is ahead of what is stored, so
        a probe for an unknown id in a quiet group is answered at once. True: it is stored.

        Raises:
            NotFound: the group is not visible to the actor.
        """
        self._stored.expect(message_id)  # before looking: the announcement cannot be missed
        try:
            async with self._db.session() as session:
                await authorize(session, group_id, actor_id, Action.READ_MESSAGES)
                # The high-water mark first: a batch committed between the two reads is then
                # seen by the lookup, never only by the mark (which would read "not on its way").
                stored = await repo.max_seq(session, group_id)
                if await repo.get_message(session, group_id, message_id) is not None:
                    return True
            if await self._log.last_seq(group_id) <= stored:
                return False
            return await self._stored.wait(message_id, STORE_WAIT_S)
        finally:
            self._stored.discard(message_id)

    async def _delete(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, message_id: uuid.UUID
    ) -> None:
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, actor_id, Action.READ_MESSAGES)
            message = await self._find(session, group_id, message_id)
            if not policy.can_delete_message(loaded.role, message.author_id == actor_id):
                raise Forbidden("Only the author, the owner or an admin can delete a message")
            message.deleted_at = self._clock.now()
            await session.flush()  # the row lock first: a fan-out under way waits for it
            await notification_repo.forget_subject(
                session, NotificationKind.MENTION, str(message.id)
            )
        await self._revise(message)
        await self._notifier.to_group(
            group_id, MessageDeleted(group_id=group_id, message_id=message.id, seq=message.seq)
        )

    async def _revise(self, message: Message) -> None:
        """Make the recovery window replay the message as history now shows it.

        The change is stored already: a log that fails here is logged, not answered (the
        window ages out within ``RECOVERY_WINDOW_S``).
        """
        try:
            await self._log.revise(message.group_id, message.seq, replay_frame(message))
        except Exception as exc:
            log.warning(
                "the recovery window still shows a message as it was",
                extra={"message_id": str(message.id), "error": repr(exc)},
            )

    async def mark_read(
        self, user_id: uuid.UUID, group_id: uuid.UUID, seq: int, exclude: str = ""
    ) -> int:
        """Move the user's read marker; their other sockets are told."""
        await self._access.require(group_id, user_id, Action.READ_MESSAGES)
        seq = min(seq, await self._log.last_seq(group_id))  # never past the last message
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

    async def _first(self, group_id: uuid.UUID, accepted: Accepted) -> MessageObject:
        """The first copy of a repeated send: stored, or still in the recovery window.

        Raises:
            Conflict: it has been deleted since (its text is not shown again).
            ServiceUnavailable: neither copy can be read now.
        """
        async with self._db.session() as session:
            found = await repo.get_message_by_id(session, group_id, accepted.message_id)
        if found is not None and found.deleted_at is not None:
            raise Conflict("The message sent with this client_msg_id has been deleted")
        if found is not None:
            return message_view(found)
        for recent in await self._log.recent(group_id, accepted.seq - 1, 1):
            if recent.seq == accepted.seq:
                frame = msgspec.json.decode(recent.frame, type=MessageCreated)
                return MessageObject(
                    id=frame.message_id,
                    group_id=frame.group_id,
                    seq=frame.seq,
                    author_id=frame.author_id,
                    body=frame.body,
                    client_msg_id=frame.client_msg_id,
                    created_at=frame.created_at,
                    edited_at=None,
                )
        raise ServiceUnavailable("The first copy of this message is not available; retry")

    async def _stage_mentions(self, session: AsyncSession, message: Message) -> list[uuid.UUID]:
        """Stage a mention event for an edited body (the fan-out skips members told before)."""
        row = {column: getattr(message, column) for column in MessageObject.__struct_fields__}
        items = mention_items([row])
        if not items:
            return []
        edited = message.edited_at.isoformat() if message.edited_at else ""
        return await self._outbox.stage(
            session, NotificationKind.MENTION, items, occurrence=f"#edit@{edited}"
        )

    @staticmethod
    async def _find(session: AsyncSession, group_id: uuid.UUID, message_id: uuid.UUID) -> Message:
        message = await repo.get_message(session, group_id, message_id)
        if message is None:
            raise NotFound("Message not found")
        return message
