"""Message history and REST sends; read markers and unread counts."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.frames import MAX_BODY_CHARS, ClientMsgId
from protocol.objects import Message, UnreadCount
from server.api.operation import Call, Operation, QueryParam
from server.api.responses import Pagination, created, no_content, ok, page
from server.api.text import text_meta
from server.errors import FieldProblem, ValidationFailed
from server.services.messages import MESSAGE_LIST
from server.store.listing import parse_list_query

_DIGITS = re.compile(r"[0-9]+")
BASE = "/api/v1/study-groups/{group_id:uuid}/messages"
ONE = BASE + "/{message_id:uuid}"
MAX_SEQ = 2**63 - 1
"""The largest seq the database holds (BIGINT)."""
SEQ_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_SEQ}
SEQ_PARAMS = (
    QueryParam("after_seq", "Only messages with seq > this.", SEQ_SCHEMA),
    QueryParam("before_seq", "Only messages with seq < this.", SEQ_SCHEMA),
)


RestBody = Annotated[
    str,
    text_meta(
        "body",
        min_length=1,
        max_length=MAX_BODY_CHARS,
        blank=False,
        example="Has anyone finished problem 3?",
    ),
]


class MessageCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A message; resending the same ``client_msg_id`` returns the first one."""

    body: RestBody
    client_msg_id: ClientMsgId


class MessagePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new body."""

    body: RestBody


class ReadMark(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything up to ``seq`` is read."""

    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class ReadState(msgspec.Struct, frozen=True, kw_only=True):
    """Where the read marker is now."""

    group_id: str
    last_read_seq: int


def _seq_param(call: Call[None], name: str, problems: list[FieldProblem]) -> int | None:
    raw = call.query.get(name)
    if raw is None:
        return None
    # The length first: int() refuses (ValueError) a string of over 4,300 digits.
    if len(raw) > len(str(MAX_SEQ)) or not _DIGITS.fullmatch(raw) or int(raw) > MAX_SEQ:
        problems.append(
            FieldProblem(name, f"{name} must be an integer 0..{MAX_SEQ}", "Use e.g. 120")
        )
        return None
    return int(raw)


async def list_messages(call: Call[None]) -> Response:
    """History: newest first (``sort=seq`` for oldest first), ``after_seq``/``before_seq``."""
    query = parse_list_query(call.query, MESSAGE_LIST, call.user_id)
    problems: list[FieldProblem] = []
    after, before = (
        _seq_param(call, "after_seq", problems),
        _seq_param(call, "before_seq", problems),
    )
    if problems:
        raise ValidationFailed("Invalid query parameters", problems)
    items, total = await call.domain.messages.history(
        call.user_id, call.path_id("group_id"), query, after, before
    )
    return page(items, Pagination.of(query.page, query.page_size, total))


async def post_message(call: Call[MessageCreate]) -> Response:
    """Send a message (201), or get the first copy of a repeated ``client_msg_id`` (200)."""
    message, new = await call.domain.messages.post(
        call.user_id, call.path_id("group_id"), call.body.body, call.body.client_msg_id
    )
    return created(message) if new else ok(message)


async def edit_message(call: Call[MessagePatch]) -> Response:
    """Edit your message."""
    message = await call.domain.messages.edit(
        call.user_id, call.path_id("group_id"), call.path_id("message_id"), call.body.body
    )
    return ok(message)


async def delete_message(call: Call[None]) -> Response:
    """Delete a message (author, owner or admin; soft)."""
    await call.domain.messages.delete(
        call.user_id, call.path_id("group_id"), call.path_id("message_id")
    )
    return no_content()


async def mark_read(call: Call[ReadMark]) -> Response:
    """Move your read marker forward."""
    group_id = call.path_id("group_id")
    marker = await call.domain.messages.mark_read(call.user_id, group_id, call.body.seq)
    return ok(ReadState(group_id=str(group_id), last_read_seq=marker))


async def unread(call: Call[None]) -> Response:
    """Unread counts of all your groups."""
    return ok(await call.domain.messages.unread(call.user_id))


MEMBER = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "GET",
        BASE,
        list_messages,
        "Message history",
        "messages",
        response=list[Message],
        listing=MESSAGE_LIST,
        params=SEQ_PARAMS,
        errors=MEMBER,
    ),
    Operation(
        "POST",
        BASE,
        post_message,
        "Send a message",
        "messages",
        body=MessageCreate,
        response=Message,
        status=201,
        errors=(*MEMBER, ErrorCode.CONFLICT),
        description="A repeated client_msg_id (from you, in this group, over REST or the "
        "socket) answers 200 with the first message and sends nothing new; 409 when that "
        "message has since been deleted (a deleted message is never shown again).",
        also={200: "A repeated client_msg_id: the first message, nothing sent"},
    ),
    Operation(
        "PATCH",
        ONE,
        edit_message,
        "Edit your message",
        "messages",
        body=MessagePatch,
        response=Message,
        errors=MEMBER,
    ),
    Operation(
        "DELETE", ONE, delete_message, "Delete a message", "messages", status=204, errors=MEMBER
    ),
    Operation(
        "PUT",
        "/api/v1/study-groups/{group_id:uuid}/read",
        mark_read,
        "Mark read up to a seq",
        "messages",
        body=ReadMark,
        response=ReadState,
        errors=MEMBER,
    ),
    Operation(
        "GET",
        "/api/v1/users/me/unread",
        unread,
        "Unread counts",
        "messages",
        response=list[UnreadCount],
    ),
]
