"""``/api/v1/study-groups``: groups, members, roles, joining and leaving."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Group, Member
from server.api.body import given
from server.api.operation import Call, Operation
from server.api.responses import Pagination, created, no_content, ok, page
from server.api.text import text_meta
from server.security.sanitize import clean_text
from server.services.groups import GROUP_LIST, MEMBER_LIST, GroupFields
from server.store.listing import parse_list_query
from server.store.models import Role

Name = Annotated[
    str,
    text_meta(
        "name", min_length=3, max_length=100, blank=False, example="Linear algebra, spring term"
    ),
]
Description = Annotated[
    str, text_meta("description", max_length=2000, example="Weekly problem sets.")
]
Subject = Annotated[str, text_meta("subject", max_length=100, example="mathematics")]
MaxMembers = Annotated[int, msgspec.Meta(ge=2, le=1000, description="Counts the owner.")]
VisibilityIn = Literal["public", "private"]
GROUP = "/api/v1/study-groups/{group_id:uuid}"
NOT_FOUND = (ErrorCode.NOT_FOUND,)


class GroupCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new study group."""

    name: Name
    visibility: VisibilityIn
    description: Description | None = None
    subject: Subject | None = None
    max_members: MaxMembers | None = None


class GroupPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; omitted ones stay. ``null`` only for ``max_members`` (others: 400)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    subject: Subject | msgspec.UnsetType = msgspec.UNSET
    visibility: VisibilityIn | msgspec.UnsetType = msgspec.UNSET
    max_members: MaxMembers | msgspec.UnsetType | None = msgspec.UNSET
    """``null`` removes the cap; omitted leaves it."""


class RoleChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new role; ``owner`` hands the group over."""

    role: Literal["owner", "admin", "member"]


def _fields(body: GroupCreate | GroupPatch) -> GroupFields:
    def text(value: str | msgspec.UnsetType | None, field: str, low: int, high: int) -> str | None:
        value = given(value)
        if value is None:
            return None
        return clean_text(value, field=field, min_length=low, max_length=high, not_blank=low > 0)

    return GroupFields(
        name=text(body.name, "name", 3, 100),
        description=text(body.description, "description", 0, 2000),
        subject=text(body.subject, "subject", 0, 100),
        visibility=given(body.visibility),
        max_members=body.max_members if isinstance(body.max_members, int) else None,
        clear_max_members=isinstance(body, GroupPatch) and body.max_members is None,
    )


async def create_group(call: Call[GroupCreate]) -> Response:
    """Create a group; you become its owner."""
    return created(await call.domain.groups.create(call.user_id, _fields(call.body)))


async def list_groups(call: Call[None]) -> Response:
    """Public groups and yours."""
    query = parse_list_query(call.query, GROUP_LIST, call.user_id)
    groups, total = await call.domain.groups.find(call.user_id, query)
    return page(groups, Pagination.of(query.page, query.page_size, total))


async def get_group(call: Call[None]) -> Response:
    """One group."""
    return ok(await call.domain.groups.get(call.user_id, call.path_id("group_id")))


async def update_group(call: Call[GroupPatch]) -> Response:
    """Change a group (owner and admins)."""
    group = await call.domain.groups.update(
        call.user_id, call.path_id("group_id"), _fields(call.body)
    )
    return ok(group)


async def delete_group(call: Call[None]) -> Response:
    """Delete a group (owner; soft delete)."""
    await call.domain.groups.delete(call.user_id, call.path_id("group_id"))
    return no_content()


async def list_members(call: Call[None]) -> Response:
    """A group's members."""
    query = parse_list_query(call.query, MEMBER_LIST, call.user_id)
    members, total = await call.domain.groups.members(call.user_id, call.path_id("group_id"), query)
    return page(members, Pagination.of(query.page, query.page_size, total))


async def join_group(call: Call[None]) -> Response:
    """Join a public group."""
    return ok(await call.domain.groups.join(call.user_id, call.path_id("group_id")))


async def remove_member(call: Call[None]) -> Response:
    """Leave (your own id) or kick."""
    await call.domain.groups.remove(call.user_id, call.path_id("group_id"), call.path_id("user_id"))
    return no_content()


async def change_role(call: Call[RoleChange]) -> Response:
    """Change a member's role (owner only)."""
    member = await call.domain.groups.change_role(
        call.user_id, call.path_id("group_id"), call.path_id("user_id"), Role(call.body.role)
    )
    return ok(member)


CONFLICT = (ErrorCode.NOT_FOUND, ErrorCode.CONFLICT)
MANAGE = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        "/api/v1/study-groups",
        create_group,
        "Create a study group",
        "study groups",
        body=GroupCreate,
        response=Group,
        status=201,
    ),
    Operation(
        "GET",
        "/api/v1/study-groups",
        list_groups,
        "List study groups",
        "study groups",
        response=list[Group],
        listing=GROUP_LIST,
    ),
    Operation(
        "GET", GROUP, get_group, "A study group", "study groups", response=Group, errors=NOT_FOUND
    ),
    Operation(
        "PATCH",
        GROUP,
        update_group,
        "Update a study group",
        "study groups",
        body=GroupPatch,
        response=Group,
        errors=(*MANAGE, ErrorCode.CONFLICT),
    ),
    Operation(
        "DELETE",
        GROUP,
        delete_group,
        "Delete a study group",
        "study groups",
        status=204,
        errors=MANAGE,
    ),
    Operation(
        "GET",
        f"{GROUP}/members",
        list_members,
        "List members",
        "study groups",
        response=list[Member],
        listing=MEMBER_LIST,
        errors=NOT_FOUND,
    ),
    Operation(
        "POST",
        f"{GROUP}/join",
        join_group,
        "Join a public group",
        "study groups",
        response=Member,
        errors=CONFLICT,
    ),
    Operation(
        "DELETE",
        f"{GROUP}/members/{{user_id:uuid}}",
        remove_member,
        "Leave or kick",
        "study groups",
        status=204,
        errors=(*MANAGE, ErrorCode.CONFLICT),
    ),
    Operation(
        "PATCH",
        f"{GROUP}/members/{{user_id:uuid}}",
        change_role,
        "Change a member's role",
        "study groups",
        body=RoleChange,
        response=Member,
        errors=(*MANAGE, ErrorCode.CONFLICT),
    ),
]
