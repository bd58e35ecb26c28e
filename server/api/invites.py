"""Invites: ``POST /study-groups/{id}/invites`` and ``/api/v1/invites``."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Invite, Member
from server.api.operation import Call, Operation
from server.api.responses import Pagination, created, ok, page
from server.services.invites import INVITE_LIST
from server.store.listing import parse_list_query


class InviteCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who to invite."""

    user_id: uuid.UUID


async def create_invite(call: Call[InviteCreate]) -> Response:
    """Invite a user (owner and admins); expires in 7 days."""
    invite = await call.domain.invites.invite(
        call.user_id, call.path_id("group_id"), call.body.user_id
    )
    return created(invite)


async def list_invites(call: Call[None]) -> Response:
    """Invites addressed to you."""
    query = parse_list_query(call.query, INVITE_LIST, call.user_id)
    invites, total = await call.domain.invites.mine(call.user_id, query)
    return page(invites, Pagination.of(query.page, query.page_size, total))


async def accept_invite(call: Call[None]) -> Response:
    """Accept: you become a member."""
    return ok(await call.domain.invites.accept(call.user_id, call.path_id("invite_id")))


async def decline_invite(call: Call[None]) -> Response:
    """Decline."""
    return ok(await call.domain.invites.decline(call.user_id, call.path_id("invite_id")))


INVITE = "/api/v1/invites/{invite_id:uuid}"
ANSWER = (ErrorCode.NOT_FOUND, ErrorCode.CONFLICT)
OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        "/api/v1/study-groups/{group_id:uuid}/invites",
        create_invite,
        "Invite a user",
        "invites",
        body=InviteCreate,
        response=Invite,
        status=201,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    ),
    Operation(
        "GET",
        "/api/v1/invites",
        list_invites,
        "Your invites",
        "invites",
        response=list[Invite],
        listing=INVITE_LIST,
    ),
    Operation(
        "POST",
        f"{INVITE}/accept",
        accept_invite,
        "Accept an invite",
        "invites",
        response=Member,
        errors=ANSWER,
    ),
    Operation(
        "POST",
        f"{INVITE}/decline",
        decline_invite,
        "Decline an invite",
        "invites",
        response=Invite,
        errors=ANSWER,
    ),
]
