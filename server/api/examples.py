"""Example values for the OpenAPI document: a request and a response for every operation.

An example is built from the operation's JSON schema: a field's own ``examples`` first (the
declarations' ``msgspec.Meta(examples=[...])``), then :data:`BY_FIELD` (realistic values by
field name, so that every object that has a ``group_id`` shows the same group), then a value
of the field's type. ``tests/unit/api/test_examples.py`` checks that every request example is
accepted by the operation's own body decoder and every response example fits its type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

USER = "8f356139-9b37-40af-94b1-a8f8f530b6b8"
FRIEND = "2d0c7e54-61a2-4f0b-9a1e-5c3b8d7f9e10"
GROUP = "93482827-4725-4295-948e-1e88f7c6d0a2"
WHEN = "2026-09-01T08:00:00Z"

BY_FIELD: Mapping[str, Any] = {
    "id": "5f0c2b8e-6e6a-4a0f-9d1f-0c7a3b2e1d4c",
    "user_id": FRIEND,
    "owner_id": USER,
    "author_id": USER,
    "created_by": USER,
    "inviter_id": USER,
    "invitee_id": FRIEND,
    "group_id": GROUP,
    "webhook_id": "c1e3a9d2-7b64-4f1e-8a0d-3e5f7c9b1a24",
    "message_id": "a9f73c7c-42d0-4d18-b3aa-2158b13760de",
    "email": "jane@example.com",
    "username": "jane_doe",
    "display_name": "Jane Doe",
    "bio": "Second-year maths student.",
    "avatar_url": "/media/avatars/8f356139-9b37-40af-94b1-a8f8f530b6b8-1f2e3d4c5b6a7980.png",
    "password": "violet-harbour-lantern-42",  # nosec B105 - a documentation example
    "current_password": "violet-harbour-lantern-42",  # nosec B105 - a documentation example
    "new_password": "amber-meadow-compass-17",  # nosec B105 - a documentation example
    "code": "123456",
    "totp_code": "123456",
    "token": "QmFzZTY0VG9rZW5FeGFtcGxlMTIzNDU2Nzg5MA",  # nosec B105 - a documentation example
    "access_token": (  # nosec B105 - a documentation example
        "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0"
        ".eyJzdWIiOiI4ZjM1NjEzOS05YjM3LTQwYWYtOTRiMS1hOGY4ZjUzMGI2YjgifQ.c2lnbmF0dXJl"
    ),
    "expires_in": 900,
    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",  # nosec B105 - a documentation example
    "otpauth_uri": (
        "otpauth://totp/StudyBuddy:jane%40example.com"
        "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=StudyBuddy"
    ),
    "name": "Linear algebra, spring term",
    "description": "Weekly problem sets and exam revision.",
    "subject": "mathematics",
    "visibility": "public",
    "max_members": 30,
    "member_count": 12,
    "role": "member",
    "body": "Has anyone finished problem 3?",
    "client_msg_id": "c5d1f0e2-9a4b-4e57-8f1d-2f6a9d0b7c31",
    "seq": 42,
    "last_seq": 42,
    "last_read_seq": 40,
    "unread": 2,
    "title": "Problem set 3",
    "due_at": "2026-12-01T17:00:00Z",
    "url": "https://hooks.example.com/studybuddy",
    "events": ["message.created", "member.joined"],
    "event": "message.created",
    "active": True,
    "attempts": 1,
    "response_status": 200,
    "last_error": None,
    "edited_at": None,
    "read_at": None,
    "mfa_enabled": False,
    "email_verified": True,
    "expires_at": "2026-09-08T08:00:00Z",
}
"""Realistic values by field name; None where a new object would hold null."""


def example(schema: Mapping[str, Any], components: Mapping[str, Any], name: str = "") -> Any:
    """An example instance of ``schema`` (``$ref`` resolved in ``components``)."""
    schema = _resolve(schema, components)
    if "examples" in schema:
        return schema["examples"][0]
    if name in BY_FIELD and schema.get("type") != "object":  # a nested object is built
        return BY_FIELD[name]
    if name.endswith("_at") and schema.get("type") == "string":
        return WHEN  # times: the contract's ISO-8601 UTC
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, components).get("type") != "null"]
            return example({**options[0]} if options else {"type": "null"}, components, name)
    return _of_type(schema, components)


def _of_type(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Any:
    if "const" in schema or "enum" in schema:
        return schema.get("const", schema.get("enum", [None])[0])
    build = _BY_TYPE.get(schema.get("type", "object"), _string)
    return build(schema, components)


def _object(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Any:
    properties = schema.get("properties", {})
    return {key: example(value, components, key) for key, value in properties.items()}


def _array(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Any:
    return [example(schema.get("items", {}), components)]


_BY_TYPE: Mapping[str, Any] = {
    "object": _object,
    "array": _array,
    "integer": lambda schema, _: int(schema.get("minimum", 1)),
    "number": lambda schema, _: float(schema.get("minimum", 1.5)),
    "boolean": lambda _schema, _: True,
    "null": lambda _schema, _: None,
    "string": lambda schema, _: _string(schema),
}


def _string(schema: Mapping[str, Any], _components: Any = None) -> str:
    formats = {
        "uuid": BY_FIELD["id"],
        "date-time": WHEN,
        "date": WHEN[:10],
        "uri": BY_FIELD["url"],
        "email": BY_FIELD["email"],
    }
    if schema.get("format") in formats:
        return str(formats[schema["format"]])
    return "example".ljust(int(schema.get("minLength", 0)), "e")


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema
