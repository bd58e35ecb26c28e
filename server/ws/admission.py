"""Admission of sockets on this node: how many are authenticated at once, how many may wait.

A reconnect storm (a node restarted, a network blip) brings thousands of sockets back at
once. Each must be authenticated and leased before ``ready``; doing all of that at once
exhausts the database and Redis pools and slows everyone. So at most
``WS_ADMISSION_CONCURRENCY`` sockets are being admitted at a time and the others wait their
turn; past ``WS_ADMISSION_QUEUE`` waiting, a handshake is answered HTTP 503 with
``Retry-After`` (clients back off with jitter and come back).

A socket that has not sent its first frame yet is silent, not waiting for work: a client
sends ``auth`` as soon as it connects. When the node is full, the oldest silent socket makes
room for a new handshake (it is closed 1013, try again later). So sockets opened and left
silent, by a broken client or on purpose, cannot lock everybody else out for the 5 s of the
auth deadline; a storm of real clients, all talking, is queued and refused as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from protocol.errors import CloseCode, ErrorCode
from server.ws.refusals import refuse

if TYPE_CHECKING:
    from starlette.types import Scope, Send

RETRY_AFTER_S = 1
"""The ASGI extension that lets a socket be refused with a plain HTTP answer."""


class Admission:
    """Counts sockets from handshake to ``ready`` and bounds how many are being admitted."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        """Held while a socket is authenticated and leased."""
        self._limit = concurrency + queue
        self._pending = 0
        self._silent: dict[object, Callable[[], None]] = {}
        """Counted-in sockets with no frame yet, oldest first, and how to evict each."""

    def enter(self) -> bool:
        """Count a new handshake in; False when the node is too busy to take it.

        A full node evicts its oldest silent socket for it; with none, it refuses.
        """
        if self._pending >= self._limit:
            if not self._silent:
                return False
            oldest = next(iter(self._silent))
            self._silent.pop(oldest)()  # it leaves once its close is sent
        self._pending += 1
        return True

    def silent(self, socket: object, evict: Callable[[], None]) -> None:
        """``socket`` is counted in and has sent nothing yet; ``evict`` ends it."""
        self._silent[socket] = evict

    def spoke(self, socket: object) -> None:
        """``socket`` sent its first frame: it is waiting for work, never evicted."""
        self._silent.pop(socket, None)

    def leave(self, socket: object = None) -> None:
        """The socket is ready, or gone."""
        self._pending -= 1
        self._silent.pop(socket, None)


async def refuse_busy(scope: Scope, send: Send) -> None:
    """Answer a handshake ``503`` with ``Retry-After`` (or close 1013 where HTTP is not offered).

    Either way the socket is never accepted, and the client is told to retry shortly.
    """
    await refuse(
        scope,
        send,
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
        "This node is admitting many sockets; retry shortly",
        close_code=CloseCode.TRY_AGAIN_LATER,
        headers=[(b"retry-after", str(RETRY_AFTER_S).encode())],
        details={"retry_after_s": RETRY_AFTER_S},
    )
