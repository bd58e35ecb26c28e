"""Error codes and close codes shared by REST and the socket."""

from __future__ import annotations

from protocol.errors import HTTP_STATUS, CloseCode, ErrorCode


def test_every_error_code_has_an_http_status() -> None:
    """No code is missing from the REST mapping."""
    assert set(HTTP_STATUS) == set(ErrorCode)


def test_http_statuses_match_the_contract() -> None:
    """Each code maps to its documented status."""
    assert {code.value: status for code, status in HTTP_STATUS.items()} == {
        "VALIDATION_ERROR": 400,
        "UNAUTHORIZED": 401,
        "MFA_REQUIRED": 401,
        "FORBIDDEN": 403,
        "NOT_FOUND": 404,
        "NOT_SUBSCRIBED": 409,
        "CONFLICT": 409,
        "PAYLOAD_TOO_LARGE": 413,
        "UNSUPPORTED_MEDIA_TYPE": 415,
        "RATE_LIMITED": 429,
        "INTERNAL_ERROR": 500,
        "SERVICE_UNAVAILABLE": 503,
    }


def test_error_codes_are_their_own_names_as_strings() -> None:
    """Codes serialise as plain strings equal to their names."""
    for code in ErrorCode:
        assert code == code.name
        assert str(code) == code.name


def test_close_codes_match_the_contract() -> None:
    """Standard and application close codes have their documented numbers."""
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "UNSUPPORTED_DATA": 1003,
        "INVALID_PAYLOAD": 1007,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013,
        "UNPARSEABLE": 4000,
        "UNAUTHORIZED": 4001,
        "FLOODING": 4008,
        "CONNECTION_LIMIT": 4009,
        "SLOW_CONSUMER": 4010,
    }
