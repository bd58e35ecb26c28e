"""``/api/v1/study-groups/{id}/assignments``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Assignment
from server.api.body import given
from server.api.operation import Call, Operation
from server.api.responses import Pagination, created, no_content, ok, page
from server.api.text import text_meta
from server.security.sanitize import clean_text
from server.services.assignments import ASSIGNMENT_LIST, AssignmentFields
from server.store.listing import parse_list_query

Title = Annotated[
    str, text_meta("title", min_length=1, max_length=200, blank=False, example="Problem set 3")
]
Text = Annotated[
    str, text_meta("description", max_length=5000, example="Exercises 1-12 of chapter 4.")
]
FIRST_YEAR, LAST_YEAR = 2000, 2099
_LEAP_YEAR = "20(0[048]|[2468][048]|[13579][26])"
_MONTH_DAY = (
    "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    "|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = (
    "[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?"
    "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
DUE_PATTERN = f"^(20[0-9]{{2}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29){_TIME}$"
"""An RFC 3339 date-time with its zone in the years 2000..2099 (as written), every date real.

A pattern rather than ``format: date-time`` plus bounds, which JSON Schema cannot state."""
Due = Annotated[
    str,
    msgspec.Meta(
        pattern=DUE_PATTERN,
        examples=["2026-12-01T17:00:00Z"],
        description=f"An RFC 3339 date-time with its zone, in the years {FIRST_YEAR}.."
        f"{LAST_YEAR} (as written), e.g. 2026-12-01T17:00:00Z.",
        extra={
            "message": f"due_at must be an RFC 3339 date-time with its zone, in the years "
            f"{FIRST_YEAR}..{LAST_YEAR}",
            "suggestion": "Use an ISO-8601 time with a zone, e.g. 2026-12-01T17:00:00Z",
        },
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
    """Fields to change; omitted ones stay (``null`` is refused: 400)."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    due_at: Due | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType = msgspec.UNSET


def _fields(body: AssignmentCreate | AssignmentPatch) -> AssignmentFields:
    title, description, due_at = given(body.title), given(body.description), given(body.due_at)
    return AssignmentFields(
        title=None
        if title is None
        else clean_text(title, field="title", min_length=1, max_length=200, not_blank=True),
        description=None
        if description is None
        else clean_text(description, field="description", max_length=5000),
        due_at=None if due_at is None else _due(due_at),
    )


def _due(text: str) -> datetime:
    """The due time (already matched by :data:`DUE_PATTERN`) in UTC.

    Python's ``$`` also matches before a final newline, so one may trail.
    """
    moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    return moment.astimezone(UTC)


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
