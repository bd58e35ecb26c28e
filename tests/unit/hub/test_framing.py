"""Pre-built server frames parse as websockets itself parses frames, at every length form."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from server.hub.outlet import ws_frame as frame


def parse(data: bytes) -> Frame:
    """Parse one frame with websockets' own parser, as a client does (server frames: no mask)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        parsed: Frame = done.value
        assert not reader.buffer
        return parsed
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_round_trips_at_each_length_form(size: int) -> None:
    """7-bit, 16-bit and 64-bit lengths: final, unmasked, text, payload intact."""
    payload = b"x" * size
    parsed = parse(frame(payload))
    assert parsed.opcode is Opcode.TEXT
    assert parsed.fin
    assert parsed.data == payload


def test_binary_frame_has_the_binary_opcode() -> None:
    """MessagePack goes out as binary frames."""
    parsed = parse(frame(b"\x81\xa4type", binary=True))
    assert parsed.opcode is Opcode.BINARY
    assert parsed.data == b"\x81\xa4type"


def test_header_is_as_short_as_the_length_allows() -> None:
    """2, 4 and 10 header bytes: nothing a client must skip."""
    assert len(frame(b"a" * 125)) == 125 + 2
    assert len(frame(b"a" * 126)) == 126 + 4
    assert len(frame(b"a" * 65536)) == 65536 + 10
