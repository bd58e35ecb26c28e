"""Request ids, access logs, HTTP metrics, and the last-resort 500 handler."""

from __future__ import annotations

import logging
import re
import time
import uuid

import sentry_sdk
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.errors import ErrorCode
from server.api.responses import error_body
from server.observability.context import ROUTE_KEY, request_id_var, user_id_var
from server.observability.metrics import HTTP_DURATION, HTTP_ERRORS, HTTP_REQUESTS

_VALID_ID = re.compile(r"^[\w.:-]{1,128}$")
log = logging.getLogger("studybuddy.access")
error_log = logging.getLogger("studybuddy.errors")


def request_id_from(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if _VALID_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Stamp every response with ``X-Request-ID``, log it, count it, and never leak a trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its context."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        scope.setdefault("state", {})["request_id"] = request_id
        try:
            if scope["type"] == "http":
                await _Exchange(self.app, scope, request_id).run(receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)


class _Exchange:
    """One HTTP request/response passing through the middleware."""

    def __init__(self, app: ASGIApp, scope: Scope, request_id: str) -> None:
        self.app = app
        self.scope = scope
        self.request_id = request_id
        self.status = 500
        self.started = False
        self.error_code: str | None = None

    async def run(self, receive: Receive, send: Send) -> None:
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
                self.status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = self.request_id
            await send(message)

        try:
            await self.app(self.scope, receive, send_wrapper)
        except Exception:
            error_log.exception("unhandled error")
            sentry_sdk.capture_exception()
            if self.started:
                raise
            await self._internal_error(send_wrapper)
        finally:
            self._record(time.perf_counter() - start)

    async def _internal_error(self, send: Send) -> None:
        body = error_body(
            ErrorCode.INTERNAL_ERROR,
            f"Internal server error; quote request id {self.request_id}",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _record(self, duration: float) -> None:
        endpoint = self.scope.get(ROUTE_KEY, "unmatched")
        method = self.scope["method"]
        HTTP_REQUESTS.labels(method, endpoint, str(self.status)).inc()
        HTTP_DURATION.labels(method, endpoint).observe(duration)
        if self.status >= 400:  # noqa: PLR2004
            HTTP_ERRORS.labels(str(self.status)).inc()
        log.info(
            "%s %s %s",
            method,
            endpoint,
            self.status,
            extra={
                "endpoint": endpoint,
                "method": method,
                "status_code": self.status,
                "duration_ms": round(duration * 1000, 2),
            },
        )
