"""Handshakes refused before a socket exists: an HTTP answer in the contract's envelope.

ASGI's denial-response extension (``websocket.http.response``) lets the app answer the
upgrade request with any HTTP response; uvicorn offers it. The body is the contract's error
envelope and the response carries ``X-Request-ID`` (the client's, if it sent one), as every
REST answer does. Where the server does not offer the extension, the socket is accepted and
closed at once with the matching close code instead (or, for a 403, closed before it is
accepted, which servers answer with a bare HTTP 403).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from protocol.errors import ErrorCode
from server.api.responses import error_body
from server.middleware.request_context import request_id_from

if TYPE_CHECKING:
    from starlette.types import Scope, Send

DENIAL = "websocket.http.response"


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    *,
    close_code: int | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
    details: dict[str, Any] | None = None,
) -> None:
    """Answer the handshake ``status`` with ``{"error": {code, message, details}}``.

    Without the denial extension: accept, then close with ``close_code`` (and ``message``);
    with no ``close_code``, close before accepting (which servers answer with HTTP 403).
    """
    if DENIAL not in (scope.get("extensions") or {}):
        if close_code is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": close_code, "reason": message[:120]})
        return
    body = error_body(code, message, details)
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-request-id", request_id_from(scope).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
