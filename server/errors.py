"""Domain errors: raised by services and security code, translated once at each edge.

They carry a contract error code but know nothing about HTTP or sockets; the REST layer
maps them to a status code and envelope, the socket layer to an ``error`` frame.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ErrorCode


class AppError(Exception):
    """Base of every error the product reports to a client."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class FieldProblem:
    """One field-level validation problem (``details.fields`` entry)."""

    __slots__ = ("field", "message", "suggestion")

    def __init__(self, field: str, message: str, suggestion: str | None = None) -> None:
        self.field = field
        self.message = message
        self.suggestion = suggestion

    def as_dict(self) -> dict[str, str]:
        """Return the wire form, omitting an absent suggestion."""
        out = {"field": self.field, "message": self.message}
        if self.suggestion:
            out["suggestion"] = self.suggestion
        return out


class ValidationFailed(AppError):
    """Input is malformed or breaks a rule (400)."""

    code = ErrorCode.VALIDATION_ERROR
    default_message = "Request validation failed"

    def __init__(
        self,
        message: str | None = None,
        fields: list[FieldProblem] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if fields:
            merged["fields"] = [problem.as_dict() for problem in fields]
        super().__init__(message, merged)

    @classmethod
    def field(cls, name: str, message: str, suggestion: str | None = None) -> ValidationFailed:
        """Build an error about a single field."""
        return cls(message, [FieldProblem(name, message, suggestion)])


class Unauthorized(AppError):
    """Missing or invalid credentials (401)."""

    code = ErrorCode.UNAUTHORIZED
    default_message = "Authentication required"


class MfaRequired(AppError):
    """A valid second factor is needed (401)."""

    code = ErrorCode.MFA_REQUIRED
    default_message = "A valid TOTP code is required"


class Forbidden(AppError):
    """Authenticated but not allowed (403)."""

    code = ErrorCode.FORBIDDEN
    default_message = "You are not allowed to do this"


class NotFound(AppError):
    """Absent, or not visible to the caller (404)."""

    code = ErrorCode.NOT_FOUND
    default_message = "Resource not found"


class Conflict(AppError):
    """The request conflicts with the current state (409)."""

    code = ErrorCode.CONFLICT
    default_message = "Conflict with the current state"


class PayloadTooLarge(AppError):
    """The body is over the size limit (413)."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    default_message = "Payload too large"


class UnsupportedMediaType(AppError):
    """The body's media type is not accepted (415)."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
    default_message = "Unsupported media type"


class RateLimited(AppError):
    """Too many requests (429)."""

    code = ErrorCode.RATE_LIMITED
    default_message = "Too many requests"

    def __init__(
        self, retry_after: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.retry_after = retry_after
        self.headers = headers or {}
        """The ``X-RateLimit-*`` headers of the limit that refused (over the request's own)."""
        super().__init__(message, {"retry_after": retry_after})


class ServiceUnavailable(AppError):
    """A dependency is down (503)."""

    code = ErrorCode.SERVICE_UNAVAILABLE
    default_message = "Service temporarily unavailable"
