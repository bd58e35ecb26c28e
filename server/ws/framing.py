"""WebSocket data frames as a server writes them (RFC 6455 section 5.2), built once per node.

A server never masks, and StudyBuddy never compresses or fragments, so a frame is a fixed
header plus the payload: the same bytes for every recipient of a fan-out.
"""

from __future__ import annotations

import struct

TEXT = 0x81
"""FIN + text opcode."""
BINARY = 0x82
"""FIN + binary opcode."""
_SHORT = 126
_MEDIUM = 1 << 16


def frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unmasked, final data frame carrying ``payload``."""
    first = BINARY if binary else TEXT
    length = len(payload)
    if length < _SHORT:
        head = bytes((first, length))
    elif length < _MEDIUM:
        head = struct.pack("!BBH", first, 126, length)
    else:
        head = struct.pack("!BBQ", first, 127, length)
    return head + payload
