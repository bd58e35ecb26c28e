"""``@username`` mentions in message bodies.

Bodies are parsed as stored, HTML-escaped (contract section 1). Usernames are
``[a-z0-9_.-]``, none of which escaping changes, and an escaped character ends a name
(``&lt;b&gt;@ada&lt;/b&gt;`` mentions ``ada``). A name counts only after a character that
cannot be part of a name or an address (so ``ada@example.com`` mentions nobody); a trailing
``.`` or ``-`` is also tried without (``@ada.`` at the end of a sentence). Who is actually
notified is decided at fan-out: members of the group named so, never the author.

An edit is staged like a new message (:meth:`MessageService.edit`): each member is notified at
most once per message (the notification key is the message id), so an edit notifies only
members it names for the first time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from protocol.objects import Message

MAX_MENTIONS = 50
_MENTION = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,32})")
_MIN_NAME = 3


def mentioned(body: str) -> set[str]:
    """The lower-case usernames a stored body may mention (at most ``MAX_MENTIONS``)."""
    names: set[str] = set()
    for match in _MENTION.finditer(body):
        name = match.group(1).lower()
        names.add(name)
        trimmed = name.rstrip(".-")
        if len(trimmed) >= _MIN_NAME:
            names.add(trimmed)
        if len(names) >= MAX_MENTIONS:
            break
    return names


OutboxItem = tuple[Any, Any, str, Any]
"""``(group_id, actor_id, key, data)`` of an event to stage."""


def mention_items(rows: Sequence[dict[str, Any]]) -> list[OutboxItem]:
    """Outbox items for the message rows that mention someone."""
    return [
        (row["group_id"], row["author_id"], str(row["id"]), _message(row))
        for row in rows
        if mentioned(row["body"])
    ]


def _message(row: dict[str, Any]) -> Message:
    return msgspec.convert({"edited_at": None, **row}, Message, strict=False)
