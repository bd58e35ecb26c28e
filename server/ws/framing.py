"""WebSocket data frames as a server writes them (RFC 6455 section 5.2), built once per node.

A server never masks, and StudyBuddy never compresses or fragments, so a frame is a fixed
header plus the payload: the same bytes for every recipient of a fan-out. websockets (which
uvicorn uses for the same connections) serialises it.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode


def frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unmasked, final data frame carrying ``payload``."""
    return Frame(Opcode.BINARY if binary else Opcode.TEXT, payload).serialize(mask=False)
