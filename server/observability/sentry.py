"""Sentry error reporting, on only when ``SENTRY_DSN`` is set, with PII scrubbed."""

from __future__ import annotations

from typing import Any

import sentry_sdk

from server.observability.redaction import redact, redact_text


def scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Remove cookies, credentials, bodies and user details before an event leaves."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        if isinstance(request.get("headers"), dict):
            request["headers"] = redact(request["headers"])
        request.pop("query_string", None)
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    for key in ("extra", "contexts"):
        if isinstance(event.get(key), dict):
            event[key] = redact(event[key])
    _scrub_texts(event)
    return event


def _scrub_texts(event: dict[str, Any]) -> None:
    """Mask tokens and addresses in exception values, log messages and breadcrumbs."""
    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception, dict) and isinstance(exception.get("value"), str):
            exception["value"] = redact_text(exception["value"])
    entry = event.get("logentry")
    if isinstance(entry, dict):
        event["logentry"] = redact(entry)
    crumbs = event.get("breadcrumbs")
    values = crumbs.get("values") if isinstance(crumbs, dict) else crumbs
    for crumb in values if isinstance(values, list) else []:
        if isinstance(crumb, dict):
            crumb.update(redact({k: crumb[k] for k in ("message", "data") if k in crumb}))


def init_sentry(dsn: str | None, environment: str, release: str | None = None) -> bool:
    """Initialise Sentry when a DSN is configured; return whether it was."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        before_send=scrub_event,  # type: ignore[arg-type]
        traces_sample_rate=0.0,
    )
    return True
