"""``/api/v1/auth/email/*`` and ``/api/v1/auth/password/*``: verification and reset links.

The emails themselves are sent by the worker: these handlers only queue them (202).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import UserPrivate
from server.api.auth import EMAIL_META, NewPassword, TotpCode
from server.api.operation import Bucket, Call, Operation
from server.api.responses import ok

AccountToken = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=512,
        examples=["q0P7lZ2c9mYbT1xHhGv8w3dK4sUu6eRfA5nJjLiWoEk"],
        description="The token of the emailed link (its `token` query parameter).",
    ),
]
FORGOT_ANSWER = "If an account has this address, a reset link is on its way."
RESEND_ANSWER = "If your address is not verified yet, a new link is on its way."


class TokenBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A verification token."""

    token: AccountToken


class ForgotBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The address of the account whose password was forgotten."""

    email: Annotated[str, EMAIL_META]


class ResetBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reset token, the new password, and the TOTP code when MFA is on."""

    token: AccountToken
    new_password: NewPassword
    totp_code: TotpCode | None = None


class Queued(msgspec.Struct, frozen=True, kw_only=True):
    """The email was queued (or, for an unknown address, nothing was: the answer is the same)."""

    detail: Annotated[str, msgspec.Meta(examples=[FORGOT_ANSWER])]


async def verify_email(call: Call[TokenBody]) -> Response:
    """Use a verification link's token; your address is verified."""
    return ok(await call.domain.accounts.verify(call.body.token))


async def resend_verification(call: Call[None]) -> Response:
    """Ask for a new verification email."""
    await call.domain.accounts.request_verification(call.user_id)
    return ok(Queued(detail=RESEND_ANSWER), 202)


async def forgot_password(call: Call[ForgotBody]) -> Response:
    """Ask for a password reset link (the same answer whether or not the address is known)."""
    await call.domain.accounts.request_reset(call.body.email)
    return ok(Queued(detail=FORGOT_ANSWER), 202)


async def reset_password(call: Call[ResetBody]) -> Response:
    """Set a new password with a reset link's token; every session and socket ends."""
    body = call.body
    user = await call.domain.accounts.reset(body.token, body.new_password, body.totp_code)
    return ok(user)


PREFIX = "/api/v1/auth"
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        f"{PREFIX}/email/verify",
        verify_email,
        "Verify your email address",
        "auth",
        body=TokenBody,
        response=UserPrivate,
        auth=False,
        description=(
            "The token comes from the link `<PUBLIC_WEB_URL>/verify-email?token=...` emailed at "
            "registration (valid 7 days, once). An unknown, used, expired or reset token: 400 "
            "naming `token`. Verification gates notification emails, never signing in."
        ),
    ),
    Operation(
        "POST",
        f"{PREFIX}/email/resend",
        resend_verification,
        "Email a new verification link",
        "auth",
        response=Queued,
        status=202,
        bucket=Bucket.AUTH,
        description="Sent by the worker; nothing is sent to an address already verified.",
    ),
    Operation(
        "POST",
        f"{PREFIX}/password/forgot",
        forgot_password,
        "Email a password reset link",
        "auth",
        body=ForgotBody,
        response=Queued,
        status=202,
        auth=False,
        bucket=Bucket.AUTH,
        description=(
            "The same answer, in about the same time, whether or not the address is "
            "registered. The link `<PUBLIC_WEB_URL>/reset-password?token=...` works once, for "
            "30 minutes; asking again voids earlier links."
        ),
    ),
    Operation(
        "POST",
        f"{PREFIX}/password/reset",
        reset_password,
        "Reset your password with an emailed token",
        "auth",
        body=ResetBody,
        response=UserPrivate,
        auth=False,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.MFA_REQUIRED,),
        description=(
            "Same password rules as registration; `totp_code` is required when MFA is on. "
            "Does what a password change does: every session is revoked, earlier access "
            "tokens stop working, and your sockets are closed. An unknown, used, expired or "
            "verification token: 400 naming `token`."
        ),
    ),
]
