"""Frame types: tags, frozen structs, field constraints, and the wire shape of server frames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from protocol import frames
from protocol.objects import Assignment, Invite, Notification

GROUP = uuid.UUID("00000000-0000-0000-0000-00000000000a")
USER = uuid.UUID("00000000-0000-0000-0000-00000000000b")
MESSAGE = uuid.UUID("00000000-0000-0000-0000-00000000000c")
WHEN = datetime(2024, 1, 31, 12, 30, tzinfo=UTC)


def _tag(cls: type[frames.Frame]) -> str:
    return str(msgspec.inspect.type_info(cls).tag)


def test_client_frame_tags() -> None:
    """Client frames are tagged with the contract's type names, each once."""
    tags = [_tag(cls) for cls in frames.CLIENT_FRAME_TYPES]
    assert tags == ["auth", "subscribe", "unsubscribe", "send", "typing", "read", "refresh", "ping"]


def test_server_frame_tags_are_unique() -> None:
    """Every server frame has its own type name."""
    tags = [_tag(cls) for cls in frames.SERVER_FRAME_TYPES]
    assert len(tags) == len(set(tags)) == len(frames.SERVER_FRAME_TYPES)
    assert {"ready", "ack", "message", "error", "pong", "notification"} <= set(tags)


def test_frames_are_frozen() -> None:
    """A frame cannot be changed after it is built."""
    frame = frames.Ping(ref=1)
    with pytest.raises(AttributeError):
        frame.ref = 2  # type: ignore[misc]


def test_frames_are_keyword_only() -> None:
    """Positional construction is refused, so adding fields never shifts meanings."""
    with pytest.raises(TypeError):
        frames.Typing(GROUP)  # type: ignore[misc]


def test_body_limit_is_documented_and_empty_bodies_fail() -> None:
    """The schema states 4000; decoding leaves the count to the pipeline but refuses empty."""
    schema = msgspec.json.schema(frames.Send)["$defs"]["Send"]["properties"]["body"]
    assert schema["maxLength"] == frames.MAX_BODY_CHARS == 4000
    decoder = msgspec.json.Decoder(frames.Send)
    base = {"type": "send", "group_id": str(GROUP), "client_msg_id": "c1"}
    assert len(decoder.decode(msgspec.json.encode({**base, "body": "é" * 4001})).body) == 4001
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(msgspec.json.encode({**base, "body": ""}))


def test_sequence_numbers_are_not_negative() -> None:
    """A read marker with a negative seq is invalid."""
    raw = msgspec.json.encode({"type": "read", "group_id": str(GROUP), "seq": -1})
    with pytest.raises(msgspec.ValidationError, match=">= 0"):
        msgspec.json.decode(raw, type=frames.Read)


def test_server_frame_without_ref_omits_it() -> None:
    """An unset ref does not appear on the wire."""
    ready = frames.Ready(user_id=USER, session_id="s1", heartbeat_s=20.0)
    assert msgspec.json.decode(msgspec.json.encode(ready)) == {
        "type": "ready",
        "user_id": str(USER),
        "session_id": "s1",
        "heartbeat_s": 20.0,
    }


def test_server_frames_encode_flat_with_uuid_and_time_strings() -> None:
    """A message frame is a flat object; UUIDs and times are strings."""
    frame = frames.MessageCreated(
        group_id=GROUP,
        seq=7,
        message_id=MESSAGE,
        author_id=None,
        body="hi",
        created_at=WHEN,
        client_msg_id="c1",
    )
    assert msgspec.json.decode(msgspec.json.encode(frame)) == {
        "type": "message",
        "group_id": str(GROUP),
        "seq": 7,
        "message_id": str(MESSAGE),
        "author_id": None,
        "body": "hi",
        "created_at": "2024-01-31T12:30:00Z",
        "client_msg_id": "c1",
    }


def test_every_server_frame_round_trips() -> None:
    """Each server frame decodes back to an equal value through the tagged union."""
    invite = Invite(
        id=MESSAGE,
        group_id=GROUP,
        inviter_id=USER,
        invitee_id=USER,
        status="pending",
        expires_at=WHEN,
        created_at=WHEN,
    )
    assignment = Assignment(
        id=MESSAGE,
        group_id=GROUP,
        title="Essay",
        description="",
        due_at=WHEN,
        created_by=None,
        created_at=WHEN,
        updated_at=WHEN,
    )
    samples: list[frames.ServerFrame] = [
        frames.Ready(user_id=USER, session_id="s", heartbeat_s=20.0, ref="r"),
        frames.Subscribed(group_id=GROUP, last_seq=3, online=[USER], recovered=True, ref=1),
        frames.Unsubscribed(group_id=GROUP),
        frames.Ack(client_msg_id="c", message_id=MESSAGE, seq=1, created_at=WHEN, ref=2),
        frames.Pong(ref=3),
        frames.MessageCreated(
            group_id=GROUP,
            seq=1,
            message_id=MESSAGE,
            author_id=USER,
            body="b",
            created_at=WHEN,
            client_msg_id="c",
        ),
        frames.MessageEdited(group_id=GROUP, message_id=MESSAGE, seq=1, body="b2", edited_at=WHEN),
        frames.MessageDeleted(group_id=GROUP, message_id=MESSAGE, seq=1),
        frames.Presence(group_id=GROUP, user_id=USER, status="online"),
        frames.PresenceDiff(group_id=GROUP, online=[USER], offline=[]),
        frames.TypingNotice(group_id=GROUP, user_id=USER),
        frames.ReadMarker(group_id=GROUP, seq=4),
        frames.InviteNotice(invite=invite),
        frames.AssignmentNotice(action="created", assignment=assignment),
        frames.MemberNotice(group_id=GROUP, user_id=USER, action="joined", role="member"),
        frames.NotificationNotice(
            notification=Notification(
                id=MESSAGE,
                kind="mention",
                group_id=GROUP,
                data={"id": str(MESSAGE), "body": "hi @ada"},
                read_at=None,
                created_at=WHEN,
            )
        ),
        frames.Error(code="NOT_FOUND", message="nope", ref="x"),
    ]
    assert {type(frame) for frame in samples} == set(frames.SERVER_FRAME_TYPES)
    decoder = msgspec.json.Decoder(frames.ServerFrames)
    for frame in samples:
        assert decoder.decode(msgspec.json.encode(frame)) == frame


def test_literal_fields_are_enforced() -> None:
    """A presence status outside online/offline is invalid."""
    raw = msgspec.json.encode(
        {"type": "presence", "group_id": str(GROUP), "user_id": str(USER), "status": "away"}
    )
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=frames.Presence)
