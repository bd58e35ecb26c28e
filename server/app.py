"""The application factory: routes, middleware, and a lifespan that owns every resource."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from protocol.errors import ErrorCode
from server.api import (
    account_recovery,
    assignments,
    auth,
    groups,
    invites,
    messages,
    notifications,
    users,
    webhooks,
)
from server.api.asyncapi import build_asyncapi
from server.api.gate import build_gate
from server.api.openapi import build_openapi
from server.api.operation import Operation
from server.api.ops import ops_routes
from server.api.responses import error_response
from server.api.routing import build_routes
from server.api.webapp import webapp_routes
from server.middleware.cors import ContractCORSMiddleware
from server.middleware.request_context import RequestContextMiddleware
from server.middleware.security_headers import SecurityHeadersMiddleware
from server.node import Node
from server.observability.logging import configure_logging
from server.observability.sentry import init_sentry
from server.resources import open_resources
from server.settings import Settings
from server.tasks.broker import start_queueing
from server.tasks.jobs import register_jobs
from server.ws.admission import Admission
from server.ws.endpoint import SocketShortcutMiddleware

log = logging.getLogger("studybuddy")

_STATUS_CODES = {
    404: (ErrorCode.NOT_FOUND, "No such resource"),
    405: (ErrorCode.VALIDATION_ERROR, "Method not allowed on this path"),
    413: (ErrorCode.PAYLOAD_TOO_LARGE, "Payload too large"),
}


def app_version() -> str:
    """The installed package version."""
    try:
        return version("studybuddy")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0.0.0"


def operations() -> list[Operation[Any]]:
    """Every REST operation of the API, in documentation order."""
    return [
        *auth.OPERATIONS,
        *account_recovery.OPERATIONS,
        *users.OPERATIONS,
        *notifications.OPERATIONS,
        *groups.OPERATIONS,
        *invites.OPERATIONS,
        *assignments.OPERATIONS,
        *messages.OPERATIONS,
        *webhooks.OPERATIONS,
    ]


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the contract's envelope."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    code, message = _STATUS_CODES.get(
        exc.status_code, (ErrorCode.VALIDATION_ERROR, str(exc.detail))
    )
    if exc.status_code == 405:  # noqa: PLR2004
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} not allowed; allowed: {allowed}"
    response = error_response(code, message, headers=exc.headers)
    response.status_code = exc.status_code
    return response


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app; ``uvicorn --factory server.app:create_app`` calls this."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    init_sentry(settings.sentry_dsn, settings.env.value, app_version())
    ops = operations()
    routes: list[BaseRoute] = [
        *ops_routes(),
        *build_routes(ops, settings.max_json_bytes, settings.max_body_bytes),
        *webapp_routes(),
        Mount(
            settings.media_url_prefix,
            StaticFiles(directory=settings.media_dir, check_dir=False),
            name="media",
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SocketShortcutMiddleware),
            Middleware(RequestContextMiddleware),
            Middleware(SecurityHeadersMiddleware, hsts=not settings.is_dev),
            Middleware(
                ContractCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_credentials=True,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"],
                expose_headers=[
                    "X-Request-ID",
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                    "Retry-After",
                ],
                max_age=600,
            ),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=_lifespan(settings),
    )
    app.state.openapi = build_openapi(ops, app_version())
    app.state.asyncapi = build_asyncapi(app_version())
    return app


def _lifespan(settings: Settings) -> Any:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_resources(settings) as resources:
            node = Node(resources)
            gate = build_gate(settings, resources.redis, node.authenticate)
            register_jobs(resources.broker)
            resources.broker.state.domain = node.domain
            await start_queueing(resources.broker)
            await node.start()
            gc.freeze()  # start-up objects live forever: keep them out of every collection
            log.info(
                "node started",
                extra={
                    "env": settings.env.value,
                    "database": resources.db.dialect,
                    "redis": bool(resources.redis),
                },
            )
            try:
                admission = Admission(
                    settings.ws_admission_concurrency, settings.ws_admission_queue
                )
                yield {
                    "node": node,
                    "domain": node.domain,
                    "gate": gate,
                    "settings": settings,
                    "admission": admission,
                    "db": resources.db,
                }
            finally:
                await node.stop()
                await resources.broker.shutdown()
                log.info("node stopped")

    return lifespan
