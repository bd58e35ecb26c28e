"""OpenAPI 3.1, generated from the declared operations and their msgspec types."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from protocol.errors import HTTP_STATUS, ErrorCode
from server.api.examples import example
from server.api.operation import Bucket, Operation
from server.store.listing import MAX_PAGE, MAX_PAGE_SIZE, MOMENT_SCHEMA, ListSpec

_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_REF = "#/components/schemas/{name}"
COMMON_ERRORS = (
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.RATE_LIMITED,
    ErrorCode.INTERNAL_ERROR,
    ErrorCode.SERVICE_UNAVAILABLE,  # PostgreSQL or Redis out of reach: retry
)
BODY_ERRORS = (ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE)

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
PAGE_PARAMS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "page",
        "Page number, from 1. A page past the last is empty, with true totals.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
    ),
    (
        "page_size",
        "Items per page.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
    ),
)
DATE_PARAMS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "created_after",
        "created_at >= this date (midnight UTC) or date-time (with its zone).",
        dict(MOMENT_SCHEMA),
    ),
    (
        "created_before",
        "created_at < this date (midnight UTC) or date-time (with its zone).",
        dict(MOMENT_SCHEMA),
    ),
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
    for op in operations:
        spec = paths[_PATH_PARAM.sub(r"{\1}", op.path)][op.method.lower()]
        _add_examples(op, spec, components)
    _add_links(operations, paths)
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
            "required": bool(msgspec.structs.fields(op.body)) and _has_required(op.body),
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
        params += _list_parameters(op.listing)
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


def _list_parameters(listing: ListSpec) -> list[dict[str, Any]]:
    """Pagination, sort, and what the spec offers: search, date range, filters."""
    declared = [*PAGE_PARAMS, *(DATE_PARAMS if listing.created is not None else ())]
    params = [
        {"name": name, "in": "query", "description": text, "schema": schema}
        for name, text, schema in declared
    ]
    if listing.search:
        params.append(
            {
                "name": "search",
                "in": "query",
                "description": "Case-insensitive substring of the resource's text fields.",
                "schema": {"type": "string"},
            }
        )
    fields = "|".join(sorted(listing.sorts))
    params.append(
        {
            "name": "sort",
            "in": "query",
            "description": "Comma-separated fields, '-' before one for descending. "
            f"Allowed: {', '.join(sorted(listing.sorts))}. Default: {listing.default_sort}.",
            "schema": {
                "type": "string",
                "pattern": f"^(-?({fields})(,-?({fields}))*)?$",
                "examples": [listing.default_sort],
            },
        }
    )
    params += [
        {
            "name": f"filter[{name}]",
            "in": "query",
            "description": definition.description or f"Exact match on {name}.",
            "schema": dict(definition.schema),
        }
        for name, definition in listing.filters.items()
    ]
    return params


def _add_links(operations: Sequence[Operation[Any]], paths: dict[str, Any]) -> None:
    """OpenAPI links from each creation to the operations on what it created.

    A ``201`` whose data is a ``Thing`` with an ``id`` feeds ``{thing_id}`` of every other
    operation; the target's other path parameters come from the creating request's path.
    """
    targets = [(_PATH_PARAM.sub(r"{\1}", op.path), op) for op in operations if "{" in op.path]
    for op in operations:
        name = getattr(op.response, "__name__", "")
        if op.status != 201 or not name:  # noqa: PLR2004
            continue
        source = _PATH_PARAM.sub(r"{\1}", op.path)
        param = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() + "_id"
        links = {}
        for path, target in targets:
            wanted = _PATH_PARAM.findall(path)
            known = set(_PATH_PARAM.findall(source))
            if param not in wanted or not set(wanted) - {param} <= known:
                continue
            links[target.operation_id] = {
                "operationId": target.operation_id,
                "parameters": {
                    p: "$response.body#/data/id" if p == param else f"$request.path.{p}"
                    for p in wanted
                },
            }
        if links:
            paths[source][op.method.lower()]["responses"]["201"]["links"] = links


def _has_required(body: type[Any]) -> bool:
    info = msgspec.inspect.type_info(body)
    return isinstance(info, msgspec.inspect.StructType) and any(f.required for f in info.fields)


def _add_examples(op: Operation[Any], spec: dict[str, Any], components: dict[str, Any]) -> None:
    """An example request body and an example of every success answer."""
    body = spec.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["example"] = example(body["schema"], components)
    for status in (op.status, *op.also):
        content = spec["responses"][str(status)].get("content", {}).get("application/json")
        if content is not None:
            content["example"] = _envelope_example(op, content["schema"], components)


def _envelope_example(op: Operation[Any], schema: dict[str, Any], components: Any) -> Any:
    data = example(schema["properties"]["data"], components) if schema["properties"]["data"] else {}
    if op.listing is not None:
        return {"data": data, "pagination": PAGINATION_SCHEMA["examples"][0]}
    return {"data": data, "message": schema["properties"]["message"]["const"]}


def _responses(op: Operation[Any], schemas: dict[Any, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): _success(op, schemas)}
    for other, when in op.also.items():
        responses[str(other)] = _success(op, schemas, other, when)
    codes = [*COMMON_ERRORS, *op.errors]
    if op.body is not None:
        codes.extend(BODY_ERRORS)
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


def _success(
    op: Operation[Any], schemas: dict[Any, Any], status: int | None = None, when: str = ""
) -> dict[str, Any]:
    status = status or op.status
    if status == 204:  # noqa: PLR2004
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
        message = "Created" if status == 201 else "Success"  # noqa: PLR2004
        envelope = {
            "type": "object",
            "properties": {"data": data, "message": {"type": "string", "const": message}},
        }
    return {
        "description": when or op.summary,
        "content": {"application/json": {"schema": envelope}},
    }


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
