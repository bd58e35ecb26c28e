"""A frame ready to write, encoded once per node and shared by every recipient.

WebSocket data frames as a server writes them (RFC 6455 section 5.2) are built here once per
node: a server never masks, and StudyBuddy never compresses or fragments, so a frame is a
fixed header plus the payload, the same bytes for every recipient of a fan-out.
"""

from __future__ import annotations

import msgspec
from websockets.frames import Frame, Opcode

from protocol.codec import Codec
from protocol.frames import ServerFrame
from server.realtime.envelope import Kind


def ws_frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unmasked, final data frame carrying ``payload`` (websockets serialises it)."""
    return Frame(Opcode.BINARY if binary else Opcode.TEXT, payload).serialize(mask=False)


class Outgoing:
    """One server frame in the forms sockets need, each made on first need and then shared.

    ``data`` is the JSON encoding (as it arrives from the bus); the MessagePack encoding and
    the complete WebSocket frames (header + payload) of either are derived from it once.
    """

    __slots__ = ("_binary", "_wire", "created", "data", "kind", "seq", "size", "type")

    def __init__(
        self,
        kind: Kind,
        seq: int,
        frame_type: str,
        data: bytes | None,
        binary: bytes | None = None,
        created: float = 0.0,
    ) -> None:
        self.kind = kind
        self.seq = seq
        self.type = frame_type
        self.data = data
        self._binary = binary
        self._wire: list[bytes | None] = [None, None]
        self.created = created
        self.size = len(data) if data is not None else len(binary or b"")

    @classmethod
    def from_json(
        cls, kind: Kind, seq: int, frame: bytes, frame_type: str, created: float = 0.0
    ) -> Outgoing:
        """Wrap a JSON frame received from the bus."""
        return cls(kind, seq, frame_type, frame, created=created)

    @classmethod
    def direct(cls, codec: Codec, frame: ServerFrame, kind: Kind = Kind.EVENT) -> Outgoing:
        """Encode a reply for one connection."""
        data = codec.encode(frame)
        frame_type = str(type(frame).__struct_config__.tag)
        if codec.binary:
            return cls(kind, 0, frame_type, None, data)
        return cls(kind, 0, frame_type, data)

    def text(self) -> str:
        """The JSON form as text (for a plain ASGI ``websocket.send``)."""
        return (self.data or b"null").decode()

    def binary(self) -> bytes:
        """The MessagePack form (made on first need, from the JSON form)."""
        if self._binary is None:
            self._binary = msgspec.msgpack.encode(msgspec.json.decode(self.data or b"null"))
        return self._binary

    def wire(self, binary: bool) -> bytes:
        """The complete WebSocket frame: binary (MessagePack) or text (JSON)."""
        framed = self._wire[binary]
        if framed is None:
            payload = self.binary() if binary else (self.data or b"null")
            framed = self._wire[binary] = ws_frame(payload, binary=binary)
        return framed
