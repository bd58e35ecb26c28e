"""Security events as structured audit records, on their own logger.

One record per event on ``studybuddy.audit`` (route it to its own sink by logger name), a JSON
line like every other (:mod:`server.observability.logging`) with ``audit`` (the event),
``user_id`` and the request id from the log context. Nothing else about the person goes in:
no email, name, password, token or code; a failure says only which check failed.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum

from server.observability.context import request_id_var

AUDIT_LOGGER = "studybuddy.audit"
log = logging.getLogger(AUDIT_LOGGER)


class AuditEvent(StrEnum):
    """What happened."""

    SIGN_IN = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    REFRESH_REUSED = "auth.refresh_reused"
    """A rotated refresh token came back: its family was revoked (a stolen token?)."""
    MFA_ENABLED = "auth.mfa_enabled"
    MFA_DISABLED = "auth.mfa_disabled"
    PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105  # nosec B105 - an event name
    PASSWORD_RESET = "auth.password_reset"  # noqa: S105  # nosec B105 - an event name
    ACCOUNT_ERASED = "account.erased"
    ACCOUNT_EXPORTED = "account.exported"


def audit(event: AuditEvent, user_id: uuid.UUID | None, *, reason: str | None = None) -> None:
    """Log one audit record.

    Args:
        event: what happened.
        user_id: whose account (None: a sign-in with an unknown email).
        reason: for a failure, the check that failed (``credentials``, ``second_factor``).
    """
    fields = {
        "audit": event.value,
        "user_id": str(user_id) if user_id is not None else None,
        "request_id": request_id_var.get(),
    }
    if reason is not None:
        fields["reason"] = reason
    log.info(event.value, extra=fields)
