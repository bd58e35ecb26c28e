"""The contract's shared objects: JSON shape, optional fields, literal values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from protocol.objects import (
    NOTIFICATION_KINDS,
    Delivery,
    EmailChoices,
    Group,
    Member,
    Message,
    NotificationSettings,
    UnreadCount,
    UserPrivate,
    UserPublic,
    Webhook,
)

ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
WHEN = datetime(2024, 1, 31, 8, 0, tzinfo=UTC)


def test_private_user_extends_the_public_one() -> None:
    """The caller's own view has every public field plus account fields."""
    user = UserPrivate(
        id=ID,
        username="jane",
        display_name="Jane",
        bio="",
        avatar_url=None,
        created_at=WHEN,
        email="jane@example.com",
        mfa_enabled=False,
        updated_at=WHEN,
    )
    assert isinstance(user, UserPublic)
    assert msgspec.json.decode(msgspec.json.encode(user)) == {
        "id": str(ID),
        "username": "jane",
        "display_name": "Jane",
        "bio": "",
        "avatar_url": None,
        "created_at": "2024-01-31T08:00:00Z",
        "email": "jane@example.com",
        "mfa_enabled": False,
        "updated_at": "2024-01-31T08:00:00Z",
        "email_verified": False,
    }


def test_webhook_secret_only_when_set() -> None:
    """The secret appears in the creation response and is absent otherwise."""
    base = {
        "id": ID,
        "group_id": ID,
        "url": "https://hooks.example/x",
        "events": ["message.created"],
        "active": True,
        "created_at": WHEN,
    }
    listed = msgspec.json.decode(msgspec.json.encode(Webhook(**base)))
    created = msgspec.json.decode(msgspec.json.encode(Webhook(**base, secret="s3cr3t")))
    assert "secret" not in listed
    assert created["secret"] == "s3cr3t"


def test_group_visibility_and_role_are_literals() -> None:
    """A group decodes with known values and refuses an unknown visibility."""
    group = {
        "id": str(ID),
        "name": "Algebra",
        "description": "",
        "subject": "math",
        "visibility": "public",
        "max_members": None,
        "member_count": 1,
        "owner_id": str(ID),
        "role": "owner",
        "created_at": "2024-01-31T08:00:00Z",
        "updated_at": "2024-01-31T08:00:00Z",
    }
    decoded = msgspec.convert(group, Group)
    assert decoded.visibility == "public"
    assert decoded.created_at == WHEN
    with pytest.raises(msgspec.ValidationError, match="visibility"):
        msgspec.convert({**group, "visibility": "secret"}, Group)
    with pytest.raises(msgspec.ValidationError, match="role"):
        msgspec.convert({**group, "role": "king"}, Group)


def test_objects_round_trip() -> None:
    """Members, messages, deliveries and unread counts survive JSON and back."""
    samples: list[msgspec.Struct] = [
        Member(user_id=ID, username="jane", display_name="Jane", role="admin", joined_at=WHEN),
        Message(
            id=ID,
            group_id=ID,
            seq=1,
            author_id=None,
            body="hi",
            client_msg_id="c",
            created_at=WHEN,
            edited_at=None,
        ),
        Delivery(
            id=ID,
            webhook_id=ID,
            event="message.created",
            status="dead",
            attempts=5,
            response_status=500,
            last_error="boom",
            created_at=WHEN,
            updated_at=WHEN,
        ),
        UnreadCount(group_id=ID, unread=3, last_seq=10, last_read_seq=7),
    ]
    for sample in samples:
        assert msgspec.json.decode(msgspec.json.encode(sample), type=type(sample)) == sample


def test_objects_are_frozen() -> None:
    """Objects cannot be mutated once built."""
    count = UnreadCount(group_id=ID, unread=3, last_seq=10, last_read_seq=7)
    with pytest.raises(AttributeError):
        count.unread = 0  # type: ignore[misc]


def test_email_choices_use_the_kind_names_on_the_wire() -> None:
    """Notification settings name each kind as the contract does (`invite.received`, ...)."""
    choices = EmailChoices(
        invite_received=True, assignment_created=False, assignment_due_soon=True, mention=True
    )
    wire = msgspec.json.decode(msgspec.json.encode(NotificationSettings(email=choices)))
    assert wire == {
        "email": {
            "invite.received": True,
            "assignment.created": False,
            "assignment.due_soon": True,
            "mention": True,
        }
    }
    assert set(wire["email"]) == set(NOTIFICATION_KINDS)
