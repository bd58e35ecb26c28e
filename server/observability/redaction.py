"""PII and secret redaction for logs and error reports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|csrf|api[_-]?key|totp|otp|^code$|card",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
"""13 to 19 digits, spaced or dashed, standing alone: not the digit-only groups of a UUID."""
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_BCRYPT = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}")
"""A bcrypt hash (``$2b$12$`` and 53 characters of salt and digest)."""


def is_sensitive_key(key: str) -> bool:
    """True when a field name suggests a secret (password, token, cookie, ...)."""
    return bool(_SENSITIVE_KEY.search(key))


def redact_text(text: str) -> str:
    """Mask JWTs, bearer credentials, password hashes, card numbers and addresses in text."""
    text = _JWT.sub(REDACTED, text)
    text = _BCRYPT.sub(REDACTED, text)
    text = _BEARER.sub(r"\1 " + REDACTED, text)
    text = _CARD.sub(REDACTED, text)
    return _EMAIL.sub(REDACTED, text)


def redact(value: Any, key: str = "") -> Any:
    """Return ``value`` with secrets masked, recursing into mappings and sequences."""
    if key and is_sensitive_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
