"""Turn declared :class:`Operation` objects into Starlette routes.

The wrapper around every handler is the one place where a REST call is admitted (auth, rate
limits, CSRF), its body decoded, and domain errors translated into the contract's envelope.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from server.api.body import BodyDecoder
from server.api.gate import Gate, Rejected
from server.api.operation import Call, Operation
from server.api.responses import app_error_response
from server.errors import AppError, PayloadTooLarge, UnsupportedMediaType
from server.infra import as_unavailable
from server.observability.context import ROUTE_KEY
from server.security.csrf import CSRF_COOKIE, CSRF_HEADER, check_csrf
from server.store.db import Database

Endpoint = Callable[[Request], Awaitable[Response]]
_READS = frozenset({"GET", "HEAD"})


def build_routes(
    operations: Sequence[Operation[Any]], max_json_bytes: int, max_body_bytes: int
) -> list[Route]:
    """One route per path; each method dispatches to its operation's wrapped handler."""
    by_path: dict[str, dict[str, Endpoint]] = defaultdict(dict)
    for op in operations:
        by_path[op.path][op.method] = _wrap(op, max_json_bytes, max_body_bytes)
    return [
        Route(path, _dispatch(path, methods), methods=list(methods))
        for path, methods in by_path.items()
    ]


def labelled(path: str, endpoint: Endpoint) -> Route:
    """A plain route whose metrics and logs are labelled with ``path``."""
    return Route(path, _dispatch(path, {"GET": endpoint}), methods=["GET"])


def _dispatch(path: str, methods: dict[str, Endpoint]) -> Endpoint:
    template = path.replace(":uuid", "")

    async def endpoint(request: Request) -> Response:
        request.scope[ROUTE_KEY] = template
        handler = methods.get(request.method) or methods["GET"]  # HEAD is answered as GET
        return await handler(request)

    return endpoint


class NoBody(msgspec.Struct, forbid_unknown_fields=True):
    """What a write without a request body accepts: nothing, or ``{}``.

    Anything else is refused as for any body (415 not JSON, 400 naming each field), so a
    client that believes ``read-all`` takes a list of ids learns it before all is read.
    """


def _wrap(op: Operation[Any], max_json_bytes: int, max_body_bytes: int) -> Endpoint:
    model = op.body if op.body is not None or op.multipart or op.method in _READS else NoBody
    decoder = BodyDecoder(model, max_json_bytes) if model is not None else None
    limit = max_body_bytes if op.multipart else max_json_bytes

    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            principal, headers = await _gate(request).admit(request, op)
            if op.csrf:
                check_csrf(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER))
            request = _limited(request, limit, multipart=op.multipart)
            body = (
                decoder.decode(await request.body(), request.headers.get("content-type"))
                if decoder
                else None
            )
            if isinstance(body, NoBody):
                body = None
            with _gate(request).running(principal):
                response = await op.handler(Call(request, body, principal))
            if principal is not None and op.method not in _READS and response.status_code < 400:  # noqa: PLR2004
                await _database(request).wrote(principal.user_id)
        except Rejected as rejected:
            response, headers = app_error_response(rejected.error), rejected.headers
        except AppError as exc:
            response = app_error_response(exc)
        except Exception as exc:
            unavailable = as_unavailable(exc)
            if unavailable is None:
                raise
            response = app_error_response(unavailable)
        for name, value in headers.items():  # the gate's; a limit that refused speaks for itself
            response.headers.setdefault(name, value)
        return response

    endpoint.__name__ = op.operation_id
    return endpoint


def _gate(request: Request) -> Gate:
    return cast(Gate, request.state.gate)


def _database(request: Request) -> Database:
    """The node's database: a caller's successful write is recorded there (read-your-writes)."""
    return cast(Database, request.state.db)


def _limited(request: Request, limit: int, *, multipart: bool) -> Request:
    """Return ``request`` reading at most ``limit`` body bytes, checking the media type."""
    content_type = request.headers.get("content-type", "")
    if multipart and not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Upload the file as multipart/form-data in the field 'file'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is limited to {limit} bytes")
    received = 0
    receive = request.receive

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLarge(f"The body is limited to {limit} bytes")
        return message

    return Request(request.scope, limited_receive)
