"""TOTP (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, one step of drift either way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def otpauth_uri(secret: str, account: str, issuer: str = "StudyBuddy") -> str:
    """The ``otpauth://`` URI authenticator apps scan."""
    label = quote(f"{issuer}:{account}")
    query = urlencode({"secret": secret, "issuer": issuer, "digits": DIGITS, "period": STEP_S})
    return f"otpauth://totp/{label}?{query}"


def code_at(secret: str, step: int) -> str:
    """The code of time step ``step`` (RFC 4226 dynamic truncation)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step_of(now: float) -> int:
    """The time step containing ``now``."""
    return int(now // STEP_S)


def match_step(secret: str, code: str | None, now: float, last_used_step: int) -> int | None:
    """Return the step ``code`` is valid for, if any and not used before.

    A code is accepted once: only steps after ``last_used_step`` match, so the caller
    stores the returned step.
    """
    if not code or len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    current = step_of(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_used_step and hmac.compare_digest(code_at(secret, step), code):
            return step
    return None
