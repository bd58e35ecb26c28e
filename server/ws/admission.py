"""Admission of sockets on this node: how many are authenticated at once, how many may wait.

A reconnect storm (a node restarted, a network blip) brings thousands of sockets back at
once. Each must be authenticated and leased before ``ready``; doing all of that at once
exhausts the database and Redis pools and slows everyone. So at most
``WS_ADMISSION_CONCURRENCY`` sockets are being admitted at a time and the others wait their
turn; past ``WS_ADMISSION_QUEUE`` waiting, a handshake is answered HTTP 503 with
``Retry-After`` (clients back off with jitter and come back).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from protocol.errors import ErrorCode

if TYPE_CHECKING:
    from starlette.types import Scope, Send

RETRY_AFTER_S = 1
DENIAL = "websocket.http.response"
"""The ASGI extension that lets a socket be refused with a plain HTTP answer."""


class Admission:
    """Counts sockets from handshake to ``ready`` and bounds how many are being admitted."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        """Held while a socket is authenticated and leased."""
        self._limit = concurrency + queue
        self._pending = 0

    def enter(self) -> bool:
        """Count a new handshake in; False when the node is too busy to take it."""
        if self._pending >= self._limit:
            return False
        self._pending += 1
        return True

    def leave(self) -> None:
        """The socket is ready, or gone."""
        self._pending -= 1


async def refuse_busy(scope: Scope, send: Send) -> None:
    """Answer a handshake ``503`` with ``Retry-After`` (or close 1013 where HTTP is not offered).

    Either way the socket is never accepted, and the client is told to retry shortly.
    """
    if DENIAL not in (scope.get("extensions") or {}):
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013, "reason": "busy; retry shortly"})
        return
    body = json.dumps(
        {
            "error": {
                "code": ErrorCode.SERVICE_UNAVAILABLE.value,
                "message": "This node is admitting many sockets; retry shortly",
                "details": {"retry_after_s": RETRY_AFTER_S},
            }
        }
    ).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
