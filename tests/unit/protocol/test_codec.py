"""Frame codecs: JSON and MessagePack decoding of client frames, errors, and negotiation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from protocol import frames
from protocol.codec import (
    CLIENT_CODECS,
    JSON,
    JSON_SUBPROTOCOL,
    MSGPACK,
    MSGPACK_SUBPROTOCOL,
    SUBPROTOCOLS,
    Codec,
    FatalFrame,
    InvalidFrame,
    negotiate,
)
from protocol.codec import (
    CODECS as CODECS_BY_NAME,
)
from protocol.errors import CloseCode

GROUP = uuid.UUID("6f1c1a52-3a43-4b7e-9d0e-8a1b2c3d4e5f")
USER = uuid.UUID("0e4f7a9b-1c2d-4e3f-8a9b-0c1d2e3f4a5b")

CLIENT_FRAMES: list[tuple[dict[str, Any], frames.ClientFrame]] = [
    ({"type": "auth", "token": "eyJ.abc.def"}, frames.Auth(token="eyJ.abc.def")),
    (
        {"type": "subscribe", "group_id": str(GROUP), "since_seq": 41, "ref": "s1"},
        frames.Subscribe(group_id=GROUP, since_seq=41, ref="s1"),
    ),
    ({"type": "subscribe", "group_id": str(GROUP)}, frames.Subscribe(group_id=GROUP)),
    (
        {"type": "unsubscribe", "group_id": str(GROUP), "ref": 7},
        frames.Unsubscribe(group_id=GROUP, ref=7),
    ),
    (
        {"type": "send", "group_id": str(GROUP), "body": "Hello", "client_msg_id": "m-1"},
        frames.Send(group_id=GROUP, body="Hello", client_msg_id="m-1"),
    ),
    ({"type": "typing", "group_id": str(GROUP)}, frames.Typing(group_id=GROUP)),
    ({"type": "read", "group_id": str(GROUP), "seq": 0}, frames.Read(group_id=GROUP, seq=0)),
    ({"type": "refresh", "token": "t", "ref": "r"}, frames.Refresh(token="t", ref="r")),
    ({"type": "ping"}, frames.Ping()),
    ({"type": "ping", "ref": 0}, frames.Ping(ref=0)),
]
CODECS = pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])


def _encode(codec: Codec, value: Any) -> bytes:
    return msgspec.msgpack.encode(value) if codec.binary else msgspec.json.encode(value)


@CODECS
@pytest.mark.parametrize(("raw", "expected"), CLIENT_FRAMES, ids=lambda v: str(v)[:30])
def test_every_client_frame_decodes(
    codec: Codec, raw: dict[str, Any], expected: frames.ClientFrame
) -> None:
    """Each client frame type decodes to its struct in both formats."""
    assert codec.decode(_encode(codec, raw)) == expected


def test_every_client_frame_type_is_exercised() -> None:
    """The decoding table above covers every client frame type."""
    assert {type(frame) for _, frame in CLIENT_FRAMES} == set(frames.CLIENT_FRAME_TYPES)


@CODECS
def test_unknown_fields_are_ignored(codec: Codec) -> None:
    """Newer clients may send fields this server does not know."""
    frame = codec.decode(_encode(codec, {"type": "ping", "ref": 1, "shiny": {"new": [1, 2]}}))
    assert frame == frames.Ping(ref=1)


@CODECS
@pytest.mark.parametrize("ref", ["req-9", 42])
def test_invalid_frame_echoes_the_ref(codec: Codec, ref: str | int) -> None:
    """A bad field is a recoverable InvalidFrame that still carries the client's ref."""
    raw = {"type": "subscribe", "group_id": "not-a-uuid", "ref": ref}
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, raw))
    assert caught.value.ref == ref
    assert "group_id" in caught.value.message
    assert str(caught.value) == caught.value.message


@CODECS
def test_unknown_type_is_invalid_with_ref(codec: Codec) -> None:
    """An unknown frame type is InvalidFrame, not fatal, and keeps the ref."""
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, {"type": "dance", "ref": "r1"}))
    assert caught.value.ref == "r1"
    assert "dance" in caught.value.message


@CODECS
def test_missing_type_is_invalid(codec: Codec) -> None:
    """A frame without a type tag is InvalidFrame."""
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, {"ref": 5}))
    assert caught.value.ref == 5


@CODECS
def test_missing_required_field_is_invalid(codec: Codec) -> None:
    """A send without a body names the missing field."""
    raw = {"type": "send", "group_id": str(GROUP), "client_msg_id": "m", "ref": 3}
    with pytest.raises(InvalidFrame, match="body") as caught:
        codec.decode(_encode(codec, raw))
    assert caught.value.ref == 3


@CODECS
@pytest.mark.parametrize("value", [[1, 2], "ping", 5, None])
def test_non_object_is_invalid_without_ref(codec: Codec, value: Any) -> None:
    """Valid data that is not an object is InvalidFrame with no ref to echo."""
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, value))
    assert caught.value.ref is None


@CODECS
def test_ref_of_the_wrong_type_is_not_echoed(codec: Codec) -> None:
    """A ref that is neither string nor integer cannot be echoed."""
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, {"type": "ping", "ref": [1]}))
    assert caught.value.ref is None


@CODECS
def test_body_length_is_left_to_the_pipeline(codec: Codec) -> None:
    """The codec does not count body characters (the server checks the limit); empty fails."""
    base = {"type": "send", "group_id": str(GROUP), "client_msg_id": "m", "ref": "b"}
    assert isinstance(codec.decode(_encode(codec, {**base, "body": "x" * 4001})), frames.Send)
    with pytest.raises(InvalidFrame) as caught:
        codec.decode(_encode(codec, {**base, "body": ""}))
    assert caught.value.ref == "b"


@pytest.mark.parametrize("data", [b'{"type":', b"{]", b"not json", b""])
def test_malformed_json_is_fatal_4000(data: bytes) -> None:
    """Unparseable JSON ends the connection with 4000."""
    with pytest.raises(FatalFrame) as caught:
        JSON.decode(data)
    assert caught.value.close_code is CloseCode.UNPARSEABLE
    assert caught.value.reason == "unparseable frame"


@pytest.mark.parametrize(
    ("data", "ref"),
    [
        (b'{"type":"send","group_id":"%s","body":"cut \\ud83d","client_msg_id":"c","ref":7}', 7),
        (b'{"type":"send","group_id":"%s","body":"\\udc00","client_msg_id":"c","ref":"r"}', "r"),
        (b'{"type":"ping","ref":"\\ud800"}', None),
    ],
)
def test_a_lone_surrogate_is_invalid_not_fatal(data: bytes, ref: str | int | None) -> None:
    """Valid JSON holding half a surrogate pair (a cut emoji): VALIDATION_ERROR, socket kept."""
    with pytest.raises(InvalidFrame) as caught:
        JSON.decode(data.replace(b"%s", str(GROUP).encode()))
    assert "half of a pair" in caught.value.message
    assert caught.value.ref == ref


@pytest.mark.parametrize(
    "data",
    [b'{"type":"ping","x":NaN,"y":"\\ud83d\\ude00"}', b'{"type":"ping","y":"\\ud800"'],
)
def test_unparseable_json_with_surrogate_escapes_stays_fatal(data: bytes) -> None:
    """NaN is not JSON, nor is a truncated frame: 4000, whatever escapes they hold."""
    with pytest.raises(FatalFrame) as caught:
        JSON.decode(data)
    assert caught.value.close_code is CloseCode.UNPARSEABLE


@pytest.mark.parametrize("data", [b"\xc1", b"\x82\xa4type", b""])
def test_malformed_msgpack_is_fatal_4000(data: bytes) -> None:
    """Unparseable MessagePack ends the connection with 4000."""
    with pytest.raises(FatalFrame) as caught:
        MSGPACK.decode(data)
    assert caught.value.close_code is CloseCode.UNPARSEABLE


def test_invalid_utf8_in_json_is_fatal_1007() -> None:
    """Bytes that are not UTF-8 inside a JSON string close with 1007."""
    with pytest.raises(FatalFrame) as caught:
        JSON.decode(b'{"type":"send","body":"\xff\xfe"}')
    assert caught.value.close_code is CloseCode.INVALID_PAYLOAD
    assert caught.value.reason == "invalid UTF-8"


def test_invalid_utf8_in_msgpack_is_fatal_1007() -> None:
    """A MessagePack str with invalid UTF-8 closes with 1007."""
    data = b"\x82\xa4type\xa4send\xa4body\xa2\xff\xfe"
    with pytest.raises(FatalFrame) as caught:
        MSGPACK.decode(data)
    assert caught.value.close_code is CloseCode.INVALID_PAYLOAD


@CODECS
def test_frame_over_64_kib_is_fatal_1009(codec: Codec) -> None:
    """More than 64 KiB closes with 1009 before any parsing; exactly 64 KiB is parsed."""
    assert frames.MAX_FRAME_BYTES == 65536
    with pytest.raises(FatalFrame) as caught:
        codec.decode(b"x" * 65537)
    assert caught.value.close_code is CloseCode.MESSAGE_TOO_BIG
    with pytest.raises(FatalFrame) as at_limit:
        codec.decode(b"\xc1" * 65536)
    assert at_limit.value.close_code is CloseCode.UNPARSEABLE


def test_deep_nesting_is_fatal_4000_not_a_crash() -> None:
    """A frame nested thousands of levels deep (inside 64 KiB) closes with 4000."""
    data = b'{"type":"ping","x":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert len(data) <= frames.MAX_FRAME_BYTES
    with pytest.raises(FatalFrame) as caught:
        JSON.decode(data)
    assert caught.value.close_code is CloseCode.UNPARSEABLE


def test_deep_msgpack_nesting_is_fatal_4000() -> None:
    """The same holds for MessagePack arrays."""
    data = b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * 30_000 + b"\xc0"
    with pytest.raises(FatalFrame) as caught:
        MSGPACK.decode(data)
    assert caught.value.close_code is CloseCode.UNPARSEABLE


def test_deep_nesting_after_a_bad_field_is_invalid_without_ref() -> None:
    """When the ref probe itself hits the nesting limit, no ref is echoed."""
    data = b'{"type":"dance","x":' + b"[" * 30_000 + b"]" * 30_000 + b',"ref":"r"}'
    with pytest.raises(InvalidFrame) as caught:
        JSON.decode(data)
    assert caught.value.ref is None


def test_json_encoding_of_server_frames_omits_unset_ref() -> None:
    """Server frames encode as compact JSON; an unset ref is left out."""
    assert JSON.encode(frames.Pong()) == b'{"type":"pong"}'
    assert JSON.encode(frames.Pong(ref="p")) == b'{"type":"pong","ref":"p"}'


def test_msgpack_encoding_uses_strings_for_uuids_and_times() -> None:
    """Binary frames carry UUIDs and datetimes as strings, like JSON."""
    ack = frames.Ack(
        client_msg_id="m-1",
        message_id=USER,
        seq=12,
        created_at=datetime(2024, 1, 31, 9, 15, 0, 250000, tzinfo=UTC),
        ref=4,
    )
    decoded = msgspec.msgpack.decode(MSGPACK.encode(ack))
    assert decoded == {
        "type": "ack",
        "client_msg_id": "m-1",
        "message_id": str(USER),
        "seq": 12,
        "created_at": "2024-01-31T09:15:00.250000Z",
        "ref": 4,
    }
    assert msgspec.json.decode(JSON.encode(ack)) == decoded


def test_codecs_know_their_subprotocol_and_framing() -> None:
    """JSON rides text frames, MessagePack binary frames."""
    assert (JSON.subprotocol, JSON.binary) == (JSON_SUBPROTOCOL, False)
    assert (MSGPACK.subprotocol, MSGPACK.binary) == (MSGPACK_SUBPROTOCOL, True)
    assert SUBPROTOCOLS == ("studybuddy.v1.json", "studybuddy.v1.msgpack")


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (["studybuddy.v1.msgpack"], MSGPACK),
        (["studybuddy.v1.json"], JSON),
        ([" studybuddy.v1.msgpack "], MSGPACK),
        (["chat", "studybuddy.v1.msgpack", "studybuddy.v1.json"], MSGPACK),
        (["studybuddy.v1.json", "studybuddy.v1.msgpack"], JSON),
        (["studybuddy.v2.json"], JSON),
        ([], JSON),
    ],
)
def test_negotiate_picks_the_first_supported_offer(offered: list[str], expected: Codec) -> None:
    """The client's first supported subprotocol wins; with none, JSON."""
    assert negotiate(offered) is expected


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize(("_raw", "frame"), CLIENT_FRAMES, ids=lambda v: str(v)[:30])
def test_client_codec_frames_decode_on_the_server(
    subprotocol: str, _raw: dict[str, Any], frame: frames.ClientFrame
) -> None:
    """What a Python client encodes, the server's codec of the same format decodes."""
    assert CODECS_BY_NAME[subprotocol].decode(CLIENT_CODECS[subprotocol].encode(frame)) == frame


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_client_codec_decodes_what_the_server_sends(subprotocol: str) -> None:
    """A message frame round-trips server -> client, UUIDs and times included."""
    sent = frames.MessageCreated(
        group_id=GROUP,
        seq=3,
        message_id=USER,
        author_id=None,
        body="hi",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        client_msg_id="c-1",
    )
    client = CLIENT_CODECS[subprotocol]
    assert client.subprotocol == subprotocol
    assert client.decode(CODECS_BY_NAME[subprotocol].encode(sent)) == sent


def test_client_codec_rejects_what_is_not_a_server_frame() -> None:
    """A client frame is not a server frame: msgspec's error, for the client to count."""
    with pytest.raises(msgspec.DecodeError):
        CLIENT_CODECS[JSON_SUBPROTOCOL].decode(b'{"type": "auth", "token": "t"}')
