"""Frame codecs: one encoder and one decoder per format, built once and reused.

``studybuddy.v1.json`` carries text frames, ``studybuddy.v1.msgpack`` binary frames with the
same fields (UUIDs and times as strings in both).
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from protocol.errors import CloseCode
from protocol.frames import (
    MAX_FRAME_BYTES,
    ClientFrame,
    ClientFrames,
    Ref,
    ServerFrame,
    ServerFrames,
)

JSON_SUBPROTOCOL = "studybuddy.v1.json"
MSGPACK_SUBPROTOCOL = "studybuddy.v1.msgpack"
SUBPROTOCOLS = (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_TEXT = re.compile("[\ud800-\udfff]")


class FrameError(Exception):
    """A client frame that cannot be used."""


class InvalidFrame(FrameError):
    """Well-formed but not a valid frame: answered with ``VALIDATION_ERROR``, socket stays."""

    def __init__(self, message: str, ref: Ref | None) -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref


class FatalFrame(FrameError):
    """A frame that ends the connection with ``close_code``."""

    def __init__(self, close_code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


class _RefProbe(msgspec.Struct):
    ref: Ref | None = None


class Codec:
    """Decode client frames and encode server frames in one format."""

    def __init__(self, subprotocol: str, *, binary: bool) -> None:
        self.subprotocol = subprotocol
        self.binary = binary
        module: Any = msgspec.msgpack if binary else msgspec.json
        self._decoder = module.Decoder(ClientFrames)
        self._probe = module.Decoder(_RefProbe)
        self._encoder = module.Encoder()

    def decode(self, data: bytes | str) -> ClientFrames:
        """Decode one client frame (a text frame may come as ``str``).

        Raises:
            InvalidFrame: valid data that is not a valid frame (unknown type, bad fields).
            FatalFrame: too big (1009), invalid UTF-8 (1007) or unparseable (4000).
        """
        if len(data) > MAX_FRAME_BYTES:
            raise FatalFrame(CloseCode.MESSAGE_TOO_BIG, "frame over 64 KiB")
        try:
            frame: ClientFrames = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise InvalidFrame(str(exc), self._ref(data)) from None
        except UnicodeDecodeError:
            raise FatalFrame(CloseCode.INVALID_PAYLOAD, "invalid UTF-8") from None
        except (msgspec.DecodeError, RecursionError):
            if not self.binary and (parsed := _with_lone_surrogates(data)) is not None:
                raise InvalidFrame(
                    "text must be Unicode: a \\ud800-\\udfff escape is half of a pair",
                    _ref_of(parsed),
                ) from None
            raise FatalFrame(CloseCode.UNPARSEABLE, "unparseable frame") from None
        return frame

    def encode(self, frame: ServerFrame) -> bytes:
        """Encode one server frame."""
        if self.binary:
            return self._encoder.encode(msgspec.to_builtins(frame))  # type: ignore[no-any-return]
        return self._encoder.encode(frame)  # type: ignore[no-any-return]

    def _ref(self, data: bytes | str) -> Ref | None:
        try:
            probe: _RefProbe = self._probe.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        return probe.ref


def _with_lone_surrogates(data: bytes | str) -> Any:
    """JSON that parses but holds a lone surrogate escape (msgspec refuses it); else None.

    JavaScript's ``JSON.stringify`` writes one for a string cut inside a pair (an emoji
    truncated by code units): valid JSON, but not text. It is the frame's content that is
    wrong, so it is answered ``VALIDATION_ERROR``, not closed as unparseable.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else data
        if not _SURROGATE_ESCAPE.search(text):
            return None
        parsed = json.loads(text, parse_constant=_not_json)
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return parsed  # it parsed, and only a lone surrogate keeps it from being text
    except (ValueError, RecursionError):
        pass
    return None


def _not_json(constant: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's extensions, not JSON."""
    raise ValueError(constant)


def _ref_of(parsed: Any) -> Ref | None:
    """The frame's ``ref`` when it can be echoed (a ref that is itself half a pair cannot)."""
    ref = parsed.get("ref") if isinstance(parsed, dict) else None
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    return ref if isinstance(ref, str) and not _SURROGATE_TEXT.search(ref) else None


class ClientCodec:
    """The client's side of one format: encode client frames, decode server frames.

    Used by clients written in Python (the Locust scenarios in ``loadtests/``).
    """

    def __init__(self, subprotocol: str, *, binary: bool) -> None:
        self.subprotocol = subprotocol
        self.binary = binary
        module: Any = msgspec.msgpack if binary else msgspec.json
        self._decoder = module.Decoder(ServerFrames)
        self._encoder = module.Encoder()

    def encode(self, frame: ClientFrame) -> bytes:
        """Encode one client frame."""
        if self.binary:
            return self._encoder.encode(msgspec.to_builtins(frame))  # type: ignore[no-any-return]
        return self._encoder.encode(frame)  # type: ignore[no-any-return]

    def decode(self, data: bytes) -> ServerFrames:
        """Decode one server frame.

        Raises:
            msgspec.DecodeError: not a server frame of this format (``ValidationError`` is one).
        """
        frame: ServerFrames = self._decoder.decode(data)
        return frame


JSON = Codec(JSON_SUBPROTOCOL, binary=False)
MSGPACK = Codec(MSGPACK_SUBPROTOCOL, binary=True)
CODECS = {JSON.subprotocol: JSON, MSGPACK.subprotocol: MSGPACK}
CLIENT_CODECS = {
    JSON_SUBPROTOCOL: ClientCodec(JSON_SUBPROTOCOL, binary=False),
    MSGPACK_SUBPROTOCOL: ClientCodec(MSGPACK_SUBPROTOCOL, binary=True),
}


def negotiate(offered: list[str]) -> Codec:
    """The first supported subprotocol the client offered; JSON when none is."""
    for name in offered:
        codec = CODECS.get(name.strip())
        if codec is not None:
            return codec
    return JSON
