"""``/api/v1/auth``: register, login, refresh, logout, MFA."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.frames import CONTROL_FREE
from protocol.objects import UserPrivate
from server.api.cookies import clear_session_cookies, read_refresh_cookie, set_session_cookies
from server.api.operation import Bucket, Call, Operation
from server.api.responses import created, no_content, ok
from server.api.text import text_meta
from server.security.passwords import MAX_LENGTH, MIN_LENGTH, common_passwords
from server.security.sanitize import EMAIL_PATTERN
from server.services.auth import SessionTokens

EMAIL_META = msgspec.Meta(
    max_length=254,
    pattern=EMAIL_PATTERN,
    examples=["jane@example.com"],
    description=(
        "An address (letters in any case; it is stored lower-cased), at most 64 characters "
        "before the @ (RFC 5321)."
    ),
    extra={"message": "Email format invalid", "suggestion": "Use format: user@example.com"},
)
Email = Annotated[str, EMAIL_META]
PASSWORD_RULE = (
    f"{MIN_LENGTH}..{MAX_LENGTH} characters, and not on the shipped common-password list "
    "(Django's list and a few more), compared ignoring letter case and surrounding "
    "whitespace; the list's entries of a valid length are listed under `not`."
)
Password = Annotated[
    str,
    msgspec.Meta(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        examples=["violet-harbour-lantern-42"],
        description=PASSWORD_RULE,
        extra_json_schema={
            "not": {
                "enum": sorted(p for p in common_passwords() if MIN_LENGTH <= len(p) <= MAX_LENGTH)
            }
        },
        extra={
            "message": f"Password must be {MIN_LENGTH}..{MAX_LENGTH} characters",
            "suggestion": "Use a passphrase of several words",
        },
    ),
]
NewPassword = Password
"""The same rules wherever a password is chosen (registration, change, reset)."""
Username = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9_.-]{3,32}$",
        examples=["jane_doe"],
        description="3..32 of a-z, A-Z, 0-9, '_', '.', '-'; stored lower-cased, unique in any "
        "case.",
        extra={
            "message": "Username must be 3..32 characters of a-z, 0-9, '_', '.', '-'",
            "suggestion": "Use letters, digits, '_', '.' or '-', e.g. jane_doe",
        },
    ),
]
DisplayName = Annotated[
    str,
    text_meta("display_name", min_length=1, max_length=100, blank=False, example="Jane Doe"),
]
TotpCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{6}$",
        examples=["123456"],
        description="The 6-digit code of the authenticator app (RFC 6238, 30 s steps).",
        extra={"message": "A code is 6 digits", "suggestion": "Enter the current 6-digit code"},
    ),
]
BEARER: Final = "Bearer"
AnyPassword = Annotated[str, msgspec.Meta(max_length=1024)]


class RegisterBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new account."""

    email: Email
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Credentials; ``totp_code`` when MFA is on."""

    email: Annotated[
        str,
        msgspec.Meta(
            max_length=254,
            pattern=CONTROL_FREE,  # any other string is just unknown: the same 401
            examples=["jane@example.com"],
            extra={"message": "An email address has at most 254 characters and no control ones"},
        ),
    ]
    password: AnyPassword
    totp_code: TotpCode | None = None


class TokenResult(msgspec.Struct, frozen=True, kw_only=True):
    """An access token and the user it belongs to."""

    access_token: str
    expires_in: int
    user: UserPrivate
    token_type: Literal["Bearer"] = BEARER


class MfaSetupResult(msgspec.Struct, frozen=True, kw_only=True):
    """A TOTP secret to load into an authenticator app."""

    secret: str
    otpauth_uri: str


class MfaCodeBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A TOTP code."""

    code: TotpCode


class MfaDisableBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A TOTP code and the password."""

    code: TotpCode
    password: AnyPassword


def token_result(tokens: SessionTokens) -> TokenResult:
    """The login/refresh payload."""
    return TokenResult(
        access_token=tokens.access.token,
        expires_in=tokens.access.expires_in,
        user=tokens.user,
    )


def _session_response(call: Call[Any], tokens: SessionTokens) -> Response:
    response = ok(token_result(tokens))
    set_session_cookies(response, call.settings, tokens.refresh_token)
    return response


async def register(call: Call[RegisterBody]) -> Response:
    """Create an account."""
    body = call.body
    user = await call.domain.auth.register(
        email=body.email,
        username=body.username,
        password=body.password,
        display_name=body.display_name,
    )
    return created(user)


async def login(call: Call[LoginBody]) -> Response:
    """Exchange credentials for an access token and session cookies."""
    body = call.body
    tokens = await call.domain.auth.login(
        email=body.email, password=body.password, totp_code=body.totp_code
    )
    return _session_response(call, tokens)


async def refresh(call: Call[None]) -> Response:
    """Rotate the refresh cookie and issue a new access token."""
    token = read_refresh_cookie(call.request, call.settings)
    tokens = await call.domain.auth.refresh(token)
    return _session_response(call, tokens)


async def logout(call: Call[None]) -> Response:
    """Revoke the session family and clear the cookies."""
    await call.domain.auth.logout(read_refresh_cookie(call.request, call.settings))
    response = no_content()
    clear_session_cookies(response, call.settings)
    return response


async def mfa_setup(call: Call[None]) -> Response:
    """Start MFA enrolment."""
    setup = await call.domain.auth.setup_mfa(call.user_id)
    return ok(MfaSetupResult(secret=setup.secret, otpauth_uri=setup.otpauth_uri))


async def mfa_enable(call: Call[MfaCodeBody]) -> Response:
    """Confirm enrolment with a current code."""
    user = await call.domain.auth.enable_mfa(call.user_id, call.body.code)
    return ok(user)


async def mfa_disable(call: Call[MfaDisableBody]) -> Response:
    """Turn MFA off."""
    user = await call.domain.auth.disable_mfa(call.user_id, call.body.code, call.body.password)
    return ok(user)


PREFIX = "/api/v1/auth"
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        f"{PREFIX}/register",
        register,
        "Register an account",
        "auth",
        body=RegisterBody,
        response=UserPrivate,
        status=201,
        auth=False,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.CONFLICT,),
    ),
    Operation(
        "POST",
        f"{PREFIX}/login",
        login,
        "Log in",
        "auth",
        body=LoginBody,
        response=TokenResult,
        auth=False,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.UNAUTHORIZED, ErrorCode.MFA_REQUIRED),
        description="Sets the refresh cookie and the csrf_token cookie.",
    ),
    Operation(
        "POST",
        f"{PREFIX}/refresh",
        refresh,
        "Rotate the refresh token",
        "auth",
        response=TokenResult,
        auth=False,
        bucket=Bucket.AUTH,
        csrf=True,
        errors=(ErrorCode.UNAUTHORIZED,),
    ),
    Operation(
        "POST",
        f"{PREFIX}/logout",
        logout,
        "Log out",
        "auth",
        status=204,
        auth=False,
        csrf=True,
    ),
    Operation(
        "POST",
        f"{PREFIX}/mfa/setup",
        mfa_setup,
        "Start TOTP enrolment",
        "auth",
        response=MfaSetupResult,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.CONFLICT,),
    ),
    Operation(
        "POST",
        f"{PREFIX}/mfa/enable",
        mfa_enable,
        "Enable TOTP",
        "auth",
        body=MfaCodeBody,
        response=UserPrivate,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.CONFLICT,),
    ),
    Operation(
        "POST",
        f"{PREFIX}/mfa/disable",
        mfa_disable,
        "Disable TOTP",
        "auth",
        body=MfaDisableBody,
        response=UserPrivate,
        bucket=Bucket.AUTH,
        errors=(ErrorCode.CONFLICT, ErrorCode.FORBIDDEN),
    ),
]
