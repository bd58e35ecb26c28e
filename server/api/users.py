"""``/api/v1/users``: the caller's account and other people's public profiles."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

import msgspec
from starlette.responses import Response, StreamingResponse

from protocol.errors import ErrorCode
from protocol.export import AccountExport
from protocol.objects import UserPrivate, UserPublic
from server.api.auth import AnyPassword, DisplayName, NewPassword, TokenResult, TotpCode
from server.api.body import given
from server.api.cookies import clear_session_cookies
from server.api.operation import Call, Operation
from server.api.responses import Pagination, no_content, ok, page
from server.api.text import text_meta
from server.api.upload import read_upload
from server.services.users import MAX_AVATAR_BYTES, USER_LIST
from server.store.listing import parse_list_query


class ProfilePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; omitted ones stay (``null`` is refused: 400)."""

    display_name: DisplayName | msgspec.UnsetType = msgspec.UNSET
    bio: (
        Annotated[str, text_meta("bio", max_length=1000, example="Maths, mostly.")]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class PasswordChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Re-authentication and the new password."""

    current_password: AnyPassword
    new_password: NewPassword
    totp_code: TotpCode | None = None


class AccountDeletion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Re-authentication for erasing the account."""

    password: AnyPassword
    totp_code: TotpCode | None = None


async def get_me(call: Call[None]) -> Response:
    """The caller's account."""
    return ok(await call.domain.users.me(call.user_id))


async def update_me(call: Call[ProfilePatch]) -> Response:
    """Change display name or bio."""
    user = await call.domain.users.update_profile(
        call.user_id, display_name=given(call.body.display_name), bio=given(call.body.bio)
    )
    return ok(user)


async def change_password(call: Call[PasswordChange]) -> Response:
    """Set a new password; other sessions, tokens and sockets end."""
    body, principal = call.body, call.principal
    issued = await call.domain.users.change_password(
        call.user_id,
        current=body.current_password,
        new=body.new_password,
        totp_code=body.totp_code,
        session_id=principal.session_id if principal else None,
    )
    user = await call.domain.users.me(call.user_id)
    return ok(
        TokenResult(
            access_token=issued.token,
            expires_in=issued.expires_in,
            user=user,
        )
    )


async def upload_avatar(call: Call[None]) -> Response:
    """Replace the avatar (PNG, JPEG or WebP, at most 2 MiB)."""
    data = await read_upload(call.request, "file", MAX_AVATAR_BYTES)
    return ok(await call.domain.users.set_avatar(call.user_id, data))


async def export_me(call: Call[None]) -> Response:
    """Everything held about the caller (GDPR access), streamed as it is read."""
    pieces = call.domain.users.export(call.user_id)
    first = await anext(pieces)
    return StreamingResponse(
        _enveloped(first, pieces),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="studybuddy-export.json"'},
    )


async def _enveloped(first: bytes, pieces: AsyncGenerator[bytes]) -> AsyncIterator[bytes]:
    async with aclosing(pieces):
        yield b'{"data":' + first
        async for piece in pieces:
            yield piece
        yield b',"message":"Success"}'


async def delete_me(call: Call[AccountDeletion]) -> Response:
    """Erase the account and personal data."""
    await call.domain.users.delete_account(
        call.user_id, password=call.body.password, totp_code=call.body.totp_code
    )
    response = no_content()
    clear_session_cookies(response, call.settings)
    return response


async def get_user(call: Call[None]) -> Response:
    """Someone's public profile."""
    return ok(await call.domain.users.public(call.path_id("user_id")))


async def list_users(call: Call[None]) -> Response:
    """Find users by username or display name."""
    query = parse_list_query(call.query, USER_LIST, call.user_id)
    users, total = await call.domain.users.search(query, call.user_id)
    return page(users, Pagination.of(query.page, query.page_size, total))


PREFIX = "/api/v1/users"
NOT_FOUND = (ErrorCode.NOT_FOUND,)
OPERATIONS: list[Operation[Any]] = [
    Operation("GET", f"{PREFIX}/me", get_me, "Your account", "users", response=UserPrivate),
    Operation(
        "PATCH",
        f"{PREFIX}/me",
        update_me,
        "Update your profile",
        "users",
        body=ProfilePatch,
        response=UserPrivate,
    ),
    Operation(
        "PUT",
        f"{PREFIX}/me/password",
        change_password,
        "Change your password",
        "users",
        body=PasswordChange,
        response=TokenResult,
        errors=(ErrorCode.FORBIDDEN, ErrorCode.MFA_REQUIRED),
        description=(
            "Revokes your other sessions, invalidates earlier access tokens and closes "
            "your sockets. Returns a new access token."
        ),
    ),
    Operation(
        "PUT",
        f"{PREFIX}/me/avatar",
        upload_avatar,
        "Upload an avatar",
        "users",
        response=UserPrivate,
        multipart=True,
        errors=(ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    ),
    Operation(
        "GET",
        f"{PREFIX}/me/export",
        export_me,
        "Export your data (GDPR)",
        "users",
        response=AccountExport,
        description=(
            "One JSON document of everything held about you, streamed; its JSON Schema is "
            "docs/schemas/account-export.schema.json."
        ),
    ),
    Operation(
        "DELETE",
        f"{PREFIX}/me",
        delete_me,
        "Delete your account",
        "users",
        body=AccountDeletion,
        status=204,
        errors=(ErrorCode.FORBIDDEN, ErrorCode.MFA_REQUIRED),
    ),
    Operation(
        "GET",
        f"{PREFIX}/{{user_id:uuid}}",
        get_user,
        "A public profile",
        "users",
        response=UserPublic,
        errors=NOT_FOUND,
    ),
    Operation(
        "GET",
        PREFIX,
        list_users,
        "Search users",
        "users",
        response=list[UserPublic],
        listing=USER_LIST,
    ),
]
