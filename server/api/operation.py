"""Declaring an endpoint: one :class:`Operation` feeds both the router and the OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from starlette.requests import Request
from starlette.responses import Response

from protocol.errors import ErrorCode
from server.errors import FieldProblem, Unauthorized, ValidationFailed

if TYPE_CHECKING:
    from server.container import Domain
    from server.security.tokens import Principal
    from server.settings import Settings
    from server.store.listing import ListSpec

B = TypeVar("B")


class Bucket(StrEnum):
    """Which rate-limit bucket an operation draws from."""

    AUTH = "auth"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A documented query parameter other than the shared list parameters."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Call(Generic[B]):
    """What a handler receives: the request, its decoded body and the caller."""

    request: Request
    body: B
    principal: Principal | None

    @property
    def domain(self) -> Domain:
        """The use cases, built by the lifespan."""
        return cast("Domain", self.request.state.domain)

    @property
    def settings(self) -> Settings:
        """The node's settings."""
        return cast("Settings", self.request.state.settings)

    @property
    def user_id(self) -> uuid.UUID:
        """The authenticated caller's id.

        Raises:
            Unauthorized: the operation was declared without authentication.
        """
        if self.principal is None:
            raise Unauthorized
        return self.principal.user_id

    def path_id(self, name: str) -> uuid.UUID:
        """A UUID path parameter (the route's ``:uuid`` convertor already parsed it)."""
        return cast(uuid.UUID, self.request.path_params[name])

    @property
    def query(self) -> Mapping[str, str]:
        """The query string as a mapping.

        Raises:
            ValidationFailed: a parameter is given more than once (which one should count
                is anybody's guess, so none does).
        """
        params = self.request.query_params
        if len(params) < len(params.multi_items()):
            repeated = sorted({key for key in params if len(params.getlist(key)) > 1})
            problems = [
                FieldProblem(key, "Given more than once", "Give it once") for key in repeated
            ]
            raise ValidationFailed("Invalid query parameters", problems)
        return params


Handler = Callable[[Call[B]], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation(Generic[B]):
    """One REST operation.

    Attributes:
        method: HTTP method.
        path: Starlette path, e.g. ``/api/v1/study-groups/{group_id:uuid}``.
        handler: receives a :class:`Call` and returns a response.
        summary: one line for the docs.
        tag: the docs section.
        body: msgspec Struct the JSON body is decoded into, if any.
        response: type of the ``data`` of a success (``list[...]`` for lists).
        status: success status code.
        auth: whether a bearer access token is required.
        bucket: the rate-limit bucket.
        csrf: whether the CSRF double-submit check applies.
        listing: the list spec, to document filters and sorts.
        params: other documented query parameters.
        errors: error codes this operation can answer besides the common ones.
        multipart: the body is ``multipart/form-data`` with one ``file`` field.
        description: longer text for the docs.
        also: other success statuses (same body) and when they happen.
    """

    method: str
    path: str
    handler: Handler[B]
    summary: str
    tag: str
    body: type[B] | None = None
    response: Any = None
    status: int = 200
    auth: bool = True
    bucket: Bucket = Bucket.DEFAULT
    csrf: bool = False
    listing: ListSpec | None = None
    params: tuple[QueryParam, ...] = ()
    errors: tuple[ErrorCode, ...] = ()
    multipart: bool = False
    description: str = ""
    also: Mapping[int, str] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        """A stable id for the docs: the handler's name."""
        return self.handler.__name__
