"""OpenAPI 3.1, generated from the declared operations and their msgspec types."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from protocol.errors import HTTP_STATUS, ErrorCode
from server.api.operation import Bucket, Operation

_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_REF = "#/components/schemas/{name}"
COMMON_ERRORS = (ErrorCode.VALIDATION_ERROR, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
                "message": {"type": "string"},
                "details": {"type": "object"},
                "request_id": {"type": "string"},
            },
        }
    },
    "examples": [
        {
            "error": {
                "code": "VALIDATION_ERROR",
                "message": "Request validation failed",
                "details": {
                    "fields": [
                        {
                            "field": "email",
                            "message": "Email format invalid",
                            "suggestion": "Use format: user@example.com",
                        }
                    ]
                },
                "request_id": "5f0c2b8e6e6a4a0f9d1f0c7a3b2e1d4c",
            }
        }
    ],
}
PAGINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"type": "integer"} for name in ("page", "page_size", "total", "total_pages")
    },
    "examples": [{"page": 1, "page_size": 20, "total": 150, "total_pages": 8}],
}
LIST_PARAMS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("page", "Page number, from 1.", {"type": "integer", "minimum": 1, "default": 1}),
    (
        "page_size",
        "Items per page.",
        {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    ),
    ("sort", "Comma-separated fields; '-' for descending.", {"type": "string"}),
    ("search", "Case-insensitive substring of the resource's text fields.", {"type": "string"}),
    ("created_after", "created_at >= this date or datetime.", {"type": "string"}),
    ("created_before", "created_at < this date or datetime.", {"type": "string"}),
)


def build_openapi(operations: Sequence[Operation[Any]], version: str) -> dict[str, Any]:
    """Return the OpenAPI document of ``operations``."""
    types = _collect_types(operations)
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _PATH_PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, path, schemas)
    components["Error"] = ERROR_SCHEMA
    components["Pagination"] = PAGINATION_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "StudyBuddy API",
            "version": version,
            "description": "REST surface of StudyBuddy. Real-time traffic uses the WebSocket "
            "at /api/v1/ws, described in /asyncapi.json.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _collect_types(operations: Sequence[Operation[Any]]) -> list[Any]:
    seen: list[Any] = []
    for op in operations:
        for candidate in (op.body, op.response):
            if candidate is not None and candidate not in seen:
                seen.append(candidate)
    return seen


def _operation(op: Operation[Any], path: str, schemas: dict[Any, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, path),
        "responses": _responses(op, schemas),
    }
    if op.description:
        spec["description"] = op.description
    if op.auth:
        spec["security"] = [{"bearer": []}]
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[op.body]}},
        }
    if op.multipart:
        spec["requestBody"] = _multipart_body()
    return spec


def _parameters(op: Operation[Any], path: str) -> list[dict[str, Any]]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
        for name in _PATH_PARAM.findall(path)
    ]
    if op.listing is not None:
        params += [
            {"name": name, "in": "query", "description": text, "schema": schema}
            for name, text, schema in LIST_PARAMS
        ]
        params[-4]["description"] += f" Allowed: {', '.join(sorted(op.listing.sorts))}."
        params += [
            {
                "name": f"filter[{name}]",
                "in": "query",
                "description": definition.description or f"Exact match on {name}.",
                "schema": {"type": "string"},
            }
            for name, definition in op.listing.filters.items()
        ]
    params += [
        {"name": p.name, "in": "query", "description": p.description, "schema": dict(p.schema)}
        for p in op.params
    ]
    if op.csrf:
        params.append(
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": True,
                "description": "Echo of the csrf_token cookie.",
                "schema": {"type": "string"},
            }
        )
    return params


def _responses(op: Operation[Any], schemas: dict[Any, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): _success(op, schemas)}
    codes = [*COMMON_ERRORS, *op.errors]
    if op.auth:
        codes.append(ErrorCode.UNAUTHORIZED)
    if op.csrf:
        codes.append(ErrorCode.FORBIDDEN)
    if op.bucket is Bucket.AUTH or op.auth:
        codes.append(ErrorCode.RATE_LIMITED)
    for code in codes:
        status = str(HTTP_STATUS[code])
        entry = responses.setdefault(
            status,
            {
                "description": code.value,
                "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}},
            },
        )
        if code.value not in entry["description"]:
            entry["description"] += f" or {code.value}"
    return responses


def _success(op: Operation[Any], schemas: dict[Any, Any]) -> dict[str, Any]:
    if op.status == 204:  # noqa: PLR2004
        return {"description": "No content"}
    data = schemas.get(op.response, {}) if op.response is not None else {}
    if op.listing is not None:
        envelope = {
            "type": "object",
            "properties": {
                "data": data,
                "pagination": {"$ref": _REF.format(name="Pagination")},
            },
        }
    else:
        message = "Created" if op.status == 201 else "Success"  # noqa: PLR2004
        envelope = {
            "type": "object",
            "properties": {"data": data, "message": {"type": "string", "const": message}},
        }
    return {"description": op.summary, "content": {"application/json": {"schema": envelope}}}


def _multipart_body() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
