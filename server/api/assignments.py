"""``/api/v1/study-groups/{id}/assignments``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Assignment
from server.api.operation import Call, Operation
from server.api.responses import Pagination, created, no_content, ok, page
from server.security.sanitize import clean_text
from server.services.assignments import ASSIGNMENT_LIST, AssignmentFields
from server.store.listing import parse_list_query

Title = Annotated[
    str,
    msgspec.Meta(min_length=1, extra_json_schema={"maxLength": 200}, examples=["Problem set 3"]),
]
Text = Annotated[
    str,
    msgspec.Meta(extra_json_schema={"maxLength": 5000}, examples=["Exercises 1-12 of chapter 4."]),
]
Due = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        examples=["2026-12-01T17:00:00Z"],
        extra={"suggestion": "Use an ISO-8601 time with a zone, e.g. 2026-12-01T17:00:00Z"},
    ),
]
BASE = "/api/v1/study-groups/{group_id:uuid}/assignments"
ONE = BASE + "/{assignment_id:uuid}"


class AssignmentCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new assignment."""

    title: Title
    due_at: Due
    description: Text | None = None


class AssignmentPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields to change."""

    title: Title | None = None
    due_at: Due | None = None
    description: Text | None = None


def _fields(body: AssignmentCreate | AssignmentPatch) -> AssignmentFields:
    title = (
        clean_text(body.title, field="title", min_length=1, max_length=200, not_blank=True)
        if body.title is not None
        else None
    )
    text = (
        clean_text(body.description, field="description", max_length=5000)
        if body.description is not None
        else None
    )
    due = body.due_at.astimezone(UTC) if body.due_at is not None else None
    return AssignmentFields(title=title, description=text, due_at=due)


async def create_assignment(call: Call[AssignmentCreate]) -> Response:
    """Add an assignment (owner and admins)."""
    return created(
        await call.domain.assignments.create(
            call.user_id, call.path_id("group_id"), _fields(call.body)
        )
    )


async def list_assignments(call: Call[None]) -> Response:
    """A group's assignments; ``filter[due_after]``, ``filter[due_before]``."""
    query = parse_list_query(call.query, ASSIGNMENT_LIST, call.user_id)
    items, total = await call.domain.assignments.find(call.user_id, call.path_id("group_id"), query)
    return page(items, Pagination.of(query.page, query.page_size, total))


async def get_assignment(call: Call[None]) -> Response:
    """One assignment."""
    return ok(
        await call.domain.assignments.get(
            call.user_id, call.path_id("group_id"), call.path_id("assignment_id")
        )
    )


async def update_assignment(call: Call[AssignmentPatch]) -> Response:
    """Change an assignment (owner and admins)."""
    item = await call.domain.assignments.update(
        call.user_id, call.path_id("group_id"), call.path_id("assignment_id"), _fields(call.body)
    )
    return ok(item)


async def delete_assignment(call: Call[None]) -> Response:
    """Delete an assignment (owner and admins; soft)."""
    await call.domain.assignments.delete(
        call.user_id, call.path_id("group_id"), call.path_id("assignment_id")
    )
    return no_content()


MANAGE = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        BASE,
        create_assignment,
        "Create an assignment",
        "assignments",
        body=AssignmentCreate,
        response=Assignment,
        status=201,
        errors=MANAGE,
    ),
    Operation(
        "GET",
        BASE,
        list_assignments,
        "List assignments",
        "assignments",
        response=list[Assignment],
        listing=ASSIGNMENT_LIST,
        errors=MANAGE,
    ),
    Operation(
        "GET",
        ONE,
        get_assignment,
        "An assignment",
        "assignments",
        response=Assignment,
        errors=MANAGE,
    ),
    Operation(
        "PATCH",
        ONE,
        update_assignment,
        "Update an assignment",
        "assignments",
        body=AssignmentPatch,
        response=Assignment,
        errors=MANAGE,
    ),
    Operation(
        "DELETE",
        ONE,
        delete_assignment,
        "Delete an assignment",
        "assignments",
        status=204,
        errors=MANAGE,
    ),
]
