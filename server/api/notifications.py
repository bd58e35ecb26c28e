"""``/api/v1/notifications`` and ``/api/v1/users/me/notification-settings``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Notification, NotificationSettings
from server.api.operation import Call, Operation
from server.api.responses import Pagination, no_content, ok, page
from server.services.notifications import NOTIFICATION_LIST
from server.store.listing import parse_list_query

On = Annotated[bool, msgspec.Meta(examples=[True])]
Off = Annotated[bool, msgspec.Meta(examples=[False])]


class EmailChoicesPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Kinds to switch email on (true) or off (false); those left out stay as they are."""

    invite_received: On | None = msgspec.field(default=None, name="invite.received")
    assignment_created: On | None = msgspec.field(default=None, name="assignment.created")
    assignment_due_soon: On | None = msgspec.field(default=None, name="assignment.due_soon")
    mention: Off | None = None


class SettingsBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """New email choices, e.g. ``{"email": {"assignment.created": true}}``."""

    email: EmailChoicesPatch


def _changes(patch: EmailChoicesPatch) -> dict[str, bool]:
    fields = msgspec.structs.fields(patch)
    values = {field.encode_name: getattr(patch, field.name) for field in fields}
    return {name: value for name, value in values.items() if value is not None}


async def list_notifications(call: Call[None]) -> Response:
    """Your notifications, newest first."""
    query = parse_list_query(call.query, NOTIFICATION_LIST, call.user_id)
    items, total = await call.domain.notifications.mine(call.user_id, query)
    return page(items, Pagination.of(query.page, query.page_size, total))


async def read_notification(call: Call[None]) -> Response:
    """Mark one notification read."""
    notification_id = call.path_id("notification_id")
    return ok(await call.domain.notifications.mark_read(call.user_id, notification_id))


async def read_all_notifications(call: Call[None]) -> Response:
    """Mark every notification read."""
    await call.domain.notifications.mark_all_read(call.user_id)
    return no_content()


async def get_notification_settings(call: Call[None]) -> Response:
    """Which notifications are also emailed to you."""
    return ok(await call.domain.notifications.settings(call.user_id))


async def put_notification_settings(call: Call[SettingsBody]) -> Response:
    """Switch emails per kind on or off."""
    changes = _changes(call.body.email)
    return ok(await call.domain.notifications.update_settings(call.user_id, changes))


PREFIX = "/api/v1/notifications"
SETTINGS = "/api/v1/users/me/notification-settings"
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "GET",
        PREFIX,
        list_notifications,
        "Your notifications",
        "notifications",
        response=list[Notification],
        listing=NOTIFICATION_LIST,
        description=(
            "Newest first. Kinds: `invite.received` (data: the invite), `assignment.created` "
            "and `assignment.due_soon` (data: the assignment), `mention` (data: the message). "
            "Each is also pushed to your live sockets as a `notification` frame."
        ),
    ),
    Operation(
        "POST",
        f"{PREFIX}/{{notification_id:uuid}}/read",
        read_notification,
        "Mark a notification read",
        "notifications",
        response=Notification,
        errors=(ErrorCode.NOT_FOUND,),
    ),
    Operation(
        "POST",
        f"{PREFIX}/read-all",
        read_all_notifications,
        "Mark every notification read",
        "notifications",
        status=204,
    ),
    Operation(
        "GET",
        SETTINGS,
        get_notification_settings,
        "Your notification email settings",
        "notifications",
        response=NotificationSettings,
        description=(
            "Defaults: email on for `invite.received`, `assignment.due_soon` and `mention`, "
            "off for `assignment.created`. Emails go only to a verified address."
        ),
    ),
    Operation(
        "PUT",
        SETTINGS,
        put_notification_settings,
        "Change your notification email settings",
        "notifications",
        body=SettingsBody,
        response=NotificationSettings,
    ),
]
