"""Operational endpoints: health, readiness, metrics, API documents and their viewers.

Exempt from rate limits; documents and viewers load nothing from another host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from protocol.errors import ErrorCode
from server.api.responses import error_response, ok
from server.api.routing import labelled
from server.observability.metrics import render_latest

if TYPE_CHECKING:
    from server.node import Node

_SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StudyBuddy API</title>
<link rel="icon" href="/static/docs/favicon-32x32.png">
<link rel="stylesheet" href="/static/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script></body></html>"""

_REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StudyBuddy API</title>
<link rel="icon" href="/static/docs/favicon-32x32.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/static/docs/redoc.standalone.js"></script></body></html>"""


def _node(request: Request) -> Node:
    return cast("Node", request.state.node)


async def health(_request: Request) -> Response:
    """Liveness: the process answers."""
    return ok({"status": "ok"})


async def ready(request: Request) -> Response:
    """Readiness: every dependency answers; 503 names those that do not.

    Read replicas are reported (``replicas``, and ``degraded`` naming those lagging or
    down) without failing readiness: the primary serves the reads they cannot.
    """
    node = _node(request)
    checks = await node.readiness()
    replicas = node.replicas()
    degraded = sorted(name for name, report in replicas.items() if report["state"] != "ok")
    down = sorted(name for name, state in checks.items() if state != "ok")
    if down:
        return error_response(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"Unavailable: {', '.join(down)}",
            {"checks": checks, "unavailable": down, "replicas": replicas},
        )
    return ok({"status": "ready", "checks": checks, "replicas": replicas, "degraded": degraded})


async def metrics(request: Request) -> Response:
    """Prometheus exposition text."""
    await _node(request).refresh_gauges()
    body, content_type = render_latest()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document."""
    return JSONResponse(cast(dict[str, Any], request.app.state.openapi))


async def asyncapi(request: Request) -> Response:
    """The AsyncAPI 3 document of the WebSocket protocol."""
    return JSONResponse(cast(dict[str, Any], request.app.state.asyncapi))


async def swagger_ui(_request: Request) -> Response:
    """Swagger UI, served from packaged assets."""
    return HTMLResponse(_SWAGGER)


async def redoc(_request: Request) -> Response:
    """ReDoc, served from packaged assets."""
    return HTMLResponse(_REDOC)


def ops_routes() -> list[BaseRoute]:
    """Routes of the operational surface."""
    return [
        labelled("/health", health),
        labelled("/health/ready", ready),
        labelled("/health/metrics", metrics),
        labelled("/openapi.json", openapi),
        labelled("/asyncapi.json", asyncapi),
        labelled("/docs", swagger_ui),
        labelled("/redoc", redoc),
        Mount("/static", StaticFiles(packages=[("server", "static")]), name="static"),
    ]
