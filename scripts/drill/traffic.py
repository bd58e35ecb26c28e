"""Live socket traffic for the drill: users sending messages and recording every ack.

Each sender keeps one socket to its node, sends a message every ``period_s`` (alternating
between groups), and records each ``ack`` with the wall time it arrived. Anything else (an
``error`` such as SERVICE_UNAVAILABLE, no answer within 3 s, a dropped or refused connection)
is counted as not acknowledged; the sender reconnects and goes on with new ``client_msg_id``s,
so it keeps knocking through the outage and resumes by itself once the nodes are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

ANSWER_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Ack:
    """A message the server acknowledged."""

    user: int
    group_id: str
    client_msg_id: str
    body: str
    seq: int
    message_id: str
    acked_at: float
    """Wall time (Unix seconds) when the ack reached the sender."""


@dataclass
class Sender:
    """One user on one socket."""

    index: int
    url: str
    token: str
    groups: list[str]
    period_s: float
    acks: list[Ack] = field(default_factory=list)
    unanswered: int = 0
    refused: int = 0
    connections: int = 0
    _sent: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, send, reconnect, until ``stop`` is set."""
        while not stop.is_set():
            try:
                async with connect(
                    self.url,
                    subprotocols=["studybuddy.v1.json"],  # type: ignore[list-item]
                    compression=None,
                    proxy=None,
                    open_timeout=ANSWER_TIMEOUT_S,
                    close_timeout=1,
                ) as ws:
                    await self._authenticate(ws)
                    self.connections += 1
                    await self._send_until(ws, stop)
            except (OSError, TimeoutError, WebSocketException, RuntimeError):
                self.refused += 1
                await _sleep_unless(stop, 0.25)

    async def _authenticate(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"type": "auth", "token": self.token}))
        frame = await _next_frame(ws, lambda f: f["type"] in ("ready", "error"))
        if frame["type"] != "ready":
            raise RuntimeError(f"auth refused: {frame}")

    async def _send_until(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._sent += 1
            group_id = self.groups[self._sent % len(self.groups)]
            client_msg_id = f"u{self.index}-{self._sent}-{uuid.uuid4().hex[:8]}"
            body = f"drill user {self.index} message {self._sent} {client_msg_id}"
            await ws.send(
                json.dumps(
                    {
                        "type": "send",
                        "group_id": group_id,
                        "body": body,
                        "client_msg_id": client_msg_id,
                        "ref": client_msg_id,
                    }
                )
            )
            try:
                frame = await _next_frame(
                    ws, functools.partial(_answers, client_msg_id=client_msg_id)
                )
            except TimeoutError:
                self.unanswered += 1
                raise
            if frame["type"] == "ack":
                self.acks.append(
                    Ack(
                        self.index, group_id, client_msg_id, body, int(frame["seq"]),
                        str(frame["message_id"]), time.time(),
                    )
                )  # fmt: skip
            else:
                self.unanswered += 1
            await _sleep_unless(stop, self.period_s)


def _answers(frame: dict[str, Any], client_msg_id: str) -> bool:
    if frame["type"] == "ack":
        return bool(frame.get("client_msg_id") == client_msg_id)
    return frame["type"] == "error" and frame.get("ref") == client_msg_id


async def _next_frame(ws: ClientConnection, wanted: Any) -> dict[str, Any]:
    """The next frame ``wanted`` accepts, within :data:`ANSWER_TIMEOUT_S`."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        raw = await asyncio.wait_for(ws.recv(), remaining)
        frame: dict[str, Any] = json.loads(raw)
        if wanted(frame):
            return frame


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Traffic:
    """The senders, running as tasks of the drill's event loop."""

    def __init__(self, senders: list[Sender]) -> None:
        self.senders = senders
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start every sender."""
        self._tasks = [asyncio.create_task(sender.run(self._stop)) for sender in self.senders]

    async def stop(self) -> None:
        """Stop every sender and wait for them."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def acks(self) -> list[Ack]:
        """Every ack so far, in arrival order."""
        return sorted((ack for s in self.senders for ack in s.acks), key=lambda a: a.acked_at)

    def acked_since(self, moment: float) -> int:
        """How many acks arrived after ``moment``."""
        return sum(1 for ack in self.acks if ack.acked_at > moment)
