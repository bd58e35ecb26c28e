"""The last-resort error handler: an unexpected exception becomes INTERNAL_ERROR, not a trace."""

from __future__ import annotations

import json

import httpx
from starlette.types import Receive, Scope, Send

from server.middleware.request_context import RequestContextMiddleware


async def exploding(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that fails before answering."""
    raise RuntimeError("secret internals: password=hunter2")


async def half_answered(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that fails after starting its response."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("too late")


async def test_unexpected_error_is_an_enveloped_500_with_the_request_id() -> None:
    """No stack trace or message leaks; the request id is in the body and the header."""
    transport = httpx.ASGITransport(
        app=RequestContextMiddleware(exploding), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-42"
    error = json.loads(response.content)["error"]
    assert error["code"] == "INTERNAL_ERROR" and error["request_id"] == "req-42"
    assert "hunter2" not in response.text and "Traceback" not in response.text


async def test_error_after_the_response_started_is_re_raised() -> None:
    """Once headers are out, the connection is the only thing left to break."""
    transport = httpx.ASGITransport(
        app=RequestContextMiddleware(half_answered), raise_app_exceptions=True
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        try:
            await http.get("/late")
        except RuntimeError as exc:
            assert str(exc) == "too late"
        else:
            raise AssertionError("the error should propagate")
