"""Domain errors: codes, default messages, field problems and details."""

from __future__ import annotations

import pytest

from protocol.errors import HTTP_STATUS, ErrorCode
from server.errors import (
    AppError,
    Conflict,
    FieldProblem,
    Forbidden,
    MfaRequired,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)


@pytest.mark.parametrize(
    ("error_type", "code", "status", "message"),
    [
        (AppError, ErrorCode.INTERNAL_ERROR, 500, "Internal server error"),
        (ValidationFailed, ErrorCode.VALIDATION_ERROR, 400, "Request validation failed"),
        (Unauthorized, ErrorCode.UNAUTHORIZED, 401, "Authentication required"),
        (MfaRequired, ErrorCode.MFA_REQUIRED, 401, "A valid TOTP code is required"),
        (Forbidden, ErrorCode.FORBIDDEN, 403, "You are not allowed to do this"),
        (NotFound, ErrorCode.NOT_FOUND, 404, "Resource not found"),
        (Conflict, ErrorCode.CONFLICT, 409, "Conflict with the current state"),
        (PayloadTooLarge, ErrorCode.PAYLOAD_TOO_LARGE, 413, "Payload too large"),
        (UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, "Unsupported media type"),
        (ServiceUnavailable, ErrorCode.SERVICE_UNAVAILABLE, 503, "Service temporarily unavailable"),
    ],
)
def test_each_error_has_its_code_and_default_message(
    error_type: type[AppError], code: ErrorCode, status: int, message: str
) -> None:
    """Raised without arguments, an error carries its code, default text and no details."""
    error = error_type()
    assert error.code is code
    assert HTTP_STATUS[error.code] == status
    assert error.message == message
    assert str(error) == message
    assert error.details == {}
    assert isinstance(error, AppError)


def test_custom_message_and_details_are_kept() -> None:
    """A message and details given by the raiser are carried unchanged."""
    error = NotFound("Group not found", {"id": "g1"})
    assert error.message == "Group not found"
    assert str(error) == "Group not found"
    assert error.details == {"id": "g1"}


def test_empty_message_falls_back_to_the_default() -> None:
    """An empty string is not a useful message; the default is used."""
    assert Conflict("").message == "Conflict with the current state"


def test_field_problem_wire_form_omits_missing_suggestion() -> None:
    """A suggestion is only present when there is one."""
    assert FieldProblem("email", "Required").as_dict() == {"field": "email", "message": "Required"}
    assert FieldProblem("email", "Bad", "").as_dict() == {"field": "email", "message": "Bad"}
    assert FieldProblem("email", "Bad", "Use x@y.z").as_dict() == {
        "field": "email",
        "message": "Bad",
        "suggestion": "Use x@y.z",
    }


def test_validation_failed_lists_fields_alongside_other_details() -> None:
    """Field problems go under details.fields, merged with any other details."""
    error = ValidationFailed(
        "Invalid query parameters",
        [FieldProblem("page", "Too small", "Use >= 1"), FieldProblem("sort", "Unknown")],
        {"hint": "see docs"},
    )
    assert error.details == {
        "hint": "see docs",
        "fields": [
            {"field": "page", "message": "Too small", "suggestion": "Use >= 1"},
            {"field": "sort", "message": "Unknown"},
        ],
    }


def test_validation_failed_without_fields_has_no_fields_key() -> None:
    """A body-level problem has no details.fields."""
    assert ValidationFailed("The body must be a JSON object").details == {}
    assert ValidationFailed("x", []).details == {}


def test_validation_failed_does_not_mutate_the_callers_details() -> None:
    """The details dict passed in is copied before fields are added."""
    details = {"hint": "h"}
    ValidationFailed("x", [FieldProblem("a", "b")], details)
    assert details == {"hint": "h"}


def test_single_field_error() -> None:
    """ValidationFailed.field uses the problem's message as the error message too."""
    error = ValidationFailed.field("username", "Taken", "Try another")
    assert error.message == "Taken"
    assert error.details == {
        "fields": [{"field": "username", "message": "Taken", "suggestion": "Try another"}]
    }


def test_rate_limited_carries_retry_after() -> None:
    """The wait is both an attribute and a detail."""
    error = RateLimited(17)
    assert error.retry_after == 17
    assert error.details == {"retry_after": 17}
    assert error.message == "Too many requests"
    assert RateLimited(3, "Slow down").message == "Slow down"
