"""Webhook delivery signatures: ``X-StudyBuddy-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256, keyed by the secret's UTF-8 bytes, of ``"<t>.<raw body>"``.
Receivers check it with :func:`verify`, which also bounds the timestamp to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-StudyBuddy-Signature"
DEFAULT_TOLERANCE_S = 300
_MAX_TIMESTAMP_DIGITS = 20


def new_secret() -> str:
    """A fresh webhook secret, shown to the caller once at registration."""
    return "whsec_" + secrets.token_urlsafe(32)


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-StudyBuddy-Signature`` header value for a delivery body sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def _parse_header(header: str) -> tuple[int, list[str]] | None:
    """Split a header into its timestamp and ``v1`` signatures; None when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = (item.strip() for item in part.partition("="))
        if not sep:
            return None
        if key == "t":
            digits_ok = value.isascii() and value.isdigit()
            if timestamp is not None or not digits_ok or len(value) > _MAX_TIMESTAMP_DIGITS:
                return None
            timestamp = int(value)
        elif key == "v1":
            if not value.isascii():
                return None
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    secret: str, header: str, body: bytes, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    Any ``v1`` part may match; unknown parts are ignored. Malformed input, a timestamp
    too old or too far in the future, and a mismatch are all False; nothing raises.
    """
    parsed = _parse_header(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    try:
        expected = _digest(secret, body, timestamp)
    except UnicodeEncodeError:
        return False
    matches = [hmac.compare_digest(expected, signature) for signature in signatures]
    return any(matches)
