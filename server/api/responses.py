"""The contract's response envelopes, encoded with msgspec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.responses import Response

from protocol.errors import HTTP_STATUS, ErrorCode
from server.errors import AppError
from server.observability.context import request_id_var

_encoder = msgspec.json.Encoder()


class Pagination(msgspec.Struct, frozen=True):
    """The ``pagination`` object of a list response."""

    page: int
    page_size: int
    total: int
    total_pages: int

    @classmethod
    def of(cls, page: int, page_size: int, total: int) -> Pagination:
        """Compute ``total_pages`` (0 for an empty collection)."""
        return cls(page, page_size, total, -(-total // page_size))


class JSONResponse(Response):
    """A JSON response encoded by msgspec (Structs, UUIDs and UTC datetimes included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as compact JSON."""
        return _encoder.encode(content)


def ok(data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"data": ..., "message": "Success"}`` (``"Created"`` for 201)."""
    message = "Created" if status_code == 201 else "Success"  # noqa: PLR2004
    return JSONResponse({"data": data, "message": message}, status_code, headers)


def created(data: Any) -> JSONResponse:
    """A 201 envelope."""
    return ok(data, 201)


def page(items: Sequence[Any], pagination: Pagination) -> JSONResponse:
    """``{"data": [...], "pagination": {...}}``."""
    return JSONResponse({"data": items, "pagination": pagination})


def no_content() -> Response:
    """An empty 204."""
    return Response(status_code=204)


def error_body(code: ErrorCode, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    """Encode the error envelope, stamped with the current request id."""
    error: dict[str, Any] = {"code": code.value, "message": message, "details": details or {}}
    request_id = request_id_var.get()
    if request_id:
        error["request_id"] = request_id
    return _encoder.encode({"error": error})


def error_response(
    code: ErrorCode,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build the contract's error response for ``code``."""
    return Response(
        error_body(code, message, details),
        HTTP_STATUS[code],
        headers,
        media_type="application/json",
    )


def app_error_response(exc: AppError) -> Response:
    """Translate a domain error into its HTTP response."""
    headers = dict(getattr(exc, "headers", {}))
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error_response(exc.code, exc.message, exc.details, headers)
