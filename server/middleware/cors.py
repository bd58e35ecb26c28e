"""CORS (Starlette's), with a refused preflight answered in the contract's error envelope."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from protocol.errors import ErrorCode
from server.api.responses import error_response

_REFUSED = 400


class ContractCORSMiddleware(CORSMiddleware):
    """Starlette's CORS; a refused preflight is ``VALIDATION_ERROR`` JSON, not plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """Starlette's preflight answer; its refusal (which it words) re-worded as JSON."""
        response = super().preflight_response(request_headers)
        if response.status_code != _REFUSED:
            return response
        reason = bytes(response.body).decode()  # "Disallowed CORS origin, method"
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-")}
        return error_response(ErrorCode.VALIDATION_ERROR, reason, headers=headers)
