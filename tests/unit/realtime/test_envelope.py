"""Bus envelopes: a plain-text routing header in front of an already-encoded JSON frame."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from protocol.codec import JSON
from protocol.frames import MessageCreated, Presence, ServerFrame, TypingNotice
from server.realtime.envelope import (
    BadEnvelope,
    Envelope,
    Kind,
    group_channel,
    pack,
    unpack,
    user_channel,
)

GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
CREATED = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)


def sample_frame(kind: Kind) -> ServerFrame:
    """A frame typical of envelopes of ``kind``."""
    if kind is Kind.MESSAGE:
        return MessageCreated(
            group_id=GROUP,
            seq=42,
            message_id=uuid.uuid4(),
            author_id=USER,
            body="line one\nline two",
            created_at=CREATED,
            client_msg_id="c-1",
        )
    if kind is Kind.EPHEMERAL:
        return TypingNotice(group_id=GROUP, user_id=USER)
    return Presence(group_id=GROUP, user_id=USER, status="online")


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
def test_frame_object_round_trips_for_every_kind(kind: Kind) -> None:
    """A frame object is JSON-encoded once and comes back byte for byte with its routing."""
    frame = sample_frame(kind)
    payload = pack(kind, frame, seq=7, exclude="sess-1", subject=USER)
    envelope = unpack(payload)
    assert envelope == Envelope(kind, 7, "sess-1", str(USER), JSON.encode(frame))
    assert msgspec.json.decode(envelope.frame, type=type(frame)) == frame


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
def test_raw_bytes_round_trip_unchanged(kind: Kind) -> None:
    """Already-encoded frame bytes are carried as they are, newlines included."""
    raw = b'{"type":"message","body":"a\\nb"}\n'
    envelope = unpack(pack(kind, raw, seq=3))
    assert envelope.kind is kind
    assert envelope.seq == 3
    assert envelope.frame == raw


def test_envelope_without_frame_has_empty_body() -> None:
    """A DISCONNECT carries only routing: the frame is empty."""
    payload = pack(Kind.DISCONNECT, subject=USER)
    assert payload == f"3 0 - {USER}\n".encode()
    assert unpack(payload) == Envelope(Kind.DISCONNECT, 0, "", str(USER), b"")


def test_empty_exclude_and_subject_are_written_as_dash() -> None:
    """Empty fields travel as ``-`` (the header splits on spaces) and come back empty."""
    payload = pack(Kind.EVENT, b"{}", seq=0, exclude="", subject=None)
    assert payload == b"2 0 - -\n{}"
    envelope = unpack(payload)
    assert envelope.exclude == ""
    assert envelope.subject == ""


def test_string_subject_is_kept_verbatim() -> None:
    """A subject given as text (the Redis script passes created_ms) round-trips as text."""
    envelope = unpack(pack(Kind.MESSAGE, b"{}", seq=5, subject="1767225600123"))
    assert envelope.subject == "1767225600123"


def test_header_written_by_the_redis_script_unpacks() -> None:
    """The append script builds the header by hand: ``0 <seq> - <created_ms>``."""
    envelope = unpack(b'0 12 - 1767225600123\n{"type":"message"}')
    assert envelope == Envelope(Kind.MESSAGE, 12, "", "1767225600123", b'{"type":"message"}')


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"0 1 - -", id="no-newline"),
        pytest.param(b"", id="empty"),
        pytest.param(b"0 1 -\n{}", id="three-fields"),
        pytest.param(b"0 1 - - extra\n{}", id="five-fields"),
        pytest.param(b"0  1 - -\n{}", id="double-space"),
        pytest.param(b"x 1 - -\n{}", id="kind-not-int"),
        pytest.param(b"0 one - -\n{}", id="seq-not-int"),
        pytest.param(b"9 1 - -\n{}", id="unknown-kind"),
        pytest.param(b"-1 1 - -\n{}", id="negative-kind"),
    ],
)
def test_malformed_payloads_raise_bad_envelope(payload: bytes) -> None:
    """Anything that is not a four-field header line followed by a frame is rejected."""
    with pytest.raises(BadEnvelope):
        unpack(payload)


def test_bad_envelope_is_a_value_error() -> None:
    """Callers that catch ValueError also catch malformed envelopes."""
    assert issubclass(BadEnvelope, ValueError)


def test_channel_names() -> None:
    """Groups and users have distinct, stable channel names."""
    assert group_channel(GROUP) == f"g:{GROUP}"
    assert group_channel(str(GROUP)) == f"g:{GROUP}"
    assert user_channel(USER) == f"u:{USER}"
    assert user_channel(str(USER)) == f"u:{USER}"
    assert group_channel(GROUP) != user_channel(GROUP)


def test_kind_values_are_the_wire_numbers() -> None:
    """The numbers in the header are part of the wire format shared with the Lua script."""
    assert [int(k) for k in Kind] == [0, 1, 2, 3, 4, 5]
    assert pack(Kind.RECHECK).startswith(b"4 ")
