"""Per-request context carried through contextvars into every log line."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)

ROUTE_KEY = "studybuddy.route"
"""ASGI scope key where a route records its path template (the metrics and log label)."""
