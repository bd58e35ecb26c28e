"""``/api/v1/webhooks``: subscriptions to a group's events, and their deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.objects import Delivery, Webhook, WebhookEvent
from server.api.operation import Call, Operation
from server.api.responses import Pagination, created, no_content, page
from server.services.webhooks import DELIVERY_LIST, WEBHOOK_LIST, WEBHOOKS_PER_GROUP
from server.store.listing import parse_list_query

Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2000,
        examples=["https://example.com/studybuddy-hooks"],
        extra={"suggestion": "Use a public http(s) URL, e.g. https://example.com/hooks"},
    ),
]
Events = Annotated[list[WebhookEvent], msgspec.Meta(min_length=1, max_length=5)]
BASE = "/api/v1/webhooks"
ONE = BASE + "/{webhook_id:uuid}"
DESCRIPTION = (
    "Deliveries are POSTs of `{id, type, created_at, data}` signed with "
    '`X-StudyBuddy-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` keyed by '
    "the secret, which is shown only in this response. Non-2xx answers and timeouts are "
    "retried after 1 s and 4 s; after 3 attempts a delivery is `dead`. Deduplicate by "
    "`X-StudyBuddy-Delivery`: delivery is at least once. A group has at most "
    f"{WEBHOOKS_PER_GROUP} webhooks (409 beyond)."
)


class WebhookCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new webhook."""

    url: Url
    events: Events
    group_id: uuid.UUID


async def create_webhook(call: Call[WebhookCreate]) -> Response:
    """Subscribe a URL to a group's events (owner and admins)."""
    body = call.body
    hook = await call.domain.webhooks.create(
        call.user_id, body.group_id, body.url, list(body.events)
    )
    return created(hook)


async def list_webhooks(call: Call[None]) -> Response:
    """Webhooks of the groups you own or administer."""
    query = parse_list_query(call.query, WEBHOOK_LIST, call.user_id)
    hooks, total = await call.domain.webhooks.find(call.user_id, query)
    return page(hooks, Pagination.of(query.page, query.page_size, total))


async def delete_webhook(call: Call[None]) -> Response:
    """Delete a webhook; nothing more is delivered to it."""
    await call.domain.webhooks.delete(call.user_id, call.path_id("webhook_id"))
    return no_content()


async def list_deliveries(call: Call[None]) -> Response:
    """A webhook's deliveries and their attempts."""
    query = parse_list_query(call.query, DELIVERY_LIST, call.user_id)
    items, total = await call.domain.webhooks.deliveries(
        call.user_id, call.path_id("webhook_id"), query
    )
    return page(items, Pagination.of(query.page, query.page_size, total))


OPERATIONS: list[Operation[Any]] = [
    Operation(
        "POST",
        BASE,
        create_webhook,
        "Create a webhook",
        "webhooks",
        body=WebhookCreate,
        response=Webhook,
        status=201,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
        description=DESCRIPTION,
    ),
    Operation(
        "GET",
        BASE,
        list_webhooks,
        "List your groups' webhooks",
        "webhooks",
        response=list[Webhook],
        listing=WEBHOOK_LIST,
    ),
    Operation(
        "DELETE",
        ONE,
        delete_webhook,
        "Delete a webhook",
        "webhooks",
        status=204,
        errors=(ErrorCode.NOT_FOUND,),
    ),
    Operation(
        "GET",
        ONE + "/deliveries",
        list_deliveries,
        "A webhook's deliveries",
        "webhooks",
        response=list[Delivery],
        listing=DELIVERY_LIST,
        errors=(ErrorCode.NOT_FOUND,),
    ),
]
