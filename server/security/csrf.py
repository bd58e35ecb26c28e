"""CSRF double-submit: a script-readable cookie echoed in a header."""

from __future__ import annotations

import hmac
import secrets

from server.errors import Forbidden

CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def new_csrf_token() -> str:
    """A fresh random token for the ``csrf_token`` cookie."""
    return secrets.token_urlsafe(32)


def check_csrf(cookie: str | None, header: str | None) -> None:
    """Accept only when the header echoes the cookie (compared in constant time).

    Raises:
        Forbidden: missing or different.
    """
    if not cookie or not header or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise Forbidden(f"Missing or invalid {CSRF_HEADER} header")
