"""The account export (GDPR access and portability): one JSON document, its JSON Schema.

The document is ``{"data": AccountExport, "message": "Success"}``; its schema is kept in
``docs/schemas/account-export.schema.json`` (regenerate with
``python -m protocol.export > docs/schemas/account-export.schema.json``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from protocol.objects import InviteStatus, Role, UserPrivate, Visibility

EXPORT_FORMAT = "studybuddy.account-export"
EXPORT_VERSION = 1


class ExportSession(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sign-in session: one refresh-token family and its last use."""

    family_id: uuid.UUID
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    refreshes: int


class ExportMembership(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group you belong to, your role and your read marker."""

    group_id: uuid.UUID
    group_name: str
    role: Role
    joined_at: datetime
    last_read_seq: int


class ExportMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A message you wrote (deleted ones too while their text is stored)."""

    id: uuid.UUID
    group_id: uuid.UUID
    seq: int
    body: str
    client_msg_id: str
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None


class ExportInvite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An invitation you sent or received."""

    id: uuid.UUID
    group_id: uuid.UUID
    inviter_id: uuid.UUID | None
    invitee_id: uuid.UUID
    status: InviteStatus
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class ExportAssignment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An assignment you created."""

    id: uuid.UUID
    group_id: uuid.UUID
    title: str
    description: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class ExportGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group you own."""

    id: uuid.UUID
    name: str
    description: str
    subject: str
    visibility: Visibility
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class ExportWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A webhook you created (its signing secret left out)."""

    id: uuid.UUID
    group_id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    deleted_at: datetime | None


class ExportNotification(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A notification addressed to you."""

    id: uuid.UUID
    kind: str
    group_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    email_status: str | None


class ExportNotificationSettings(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Your email choices per notification kind (only what differs from the defaults)."""

    email: dict[str, bool]
    updated_at: datetime


class ExportEmailToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An emailed link (verification or reset) sent to you; the token itself is not kept."""

    purpose: Literal["verify_email", "reset_password"]
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class AccountExport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything held about you (GDPR access): your account and one list per kind of data.

    No secrets or hashes. Sections keep this order; new sections may be added (the
    ``version`` changes when a field changes meaning).
    """

    format: Literal["studybuddy.account-export"]
    version: int
    exported_at: datetime
    user: UserPrivate
    sessions: list[ExportSession]
    memberships: list[ExportMembership]
    messages: list[ExportMessage]
    invites_sent: list[ExportInvite]
    invites_received: list[ExportInvite]
    assignments_created: list[ExportAssignment]
    groups_owned: list[ExportGroup]
    webhooks_created: list[ExportWebhook]
    notifications: list[ExportNotification]
    email_tokens: list[ExportEmailToken]
    notification_settings: ExportNotificationSettings | None


class AccountExportDocument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The response body of ``GET /api/v1/users/me/export`` as downloaded."""

    data: AccountExport
    message: Literal["Success"]


def export_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the downloaded export document."""
    schema = msgspec.json.schema(AccountExportDocument)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://studybuddy.example/schemas/account-export.schema.json",
        "title": "StudyBuddy account export",
        **schema,
    }


def schema_text() -> str:
    """The schema as the file in ``docs/schemas`` holds it."""
    return json.dumps(export_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover - a developer's command
    print(schema_text(), end="")
