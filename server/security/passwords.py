"""Password hashing with bcrypt, off the event loop, and password policy.

bcrypt reads at most 72 bytes. Rather than truncating silently (two long passwords sharing a
72-byte prefix would match) or refusing long passwords, every password is first reduced with
SHA-256 and base64-encoded (44 ASCII bytes, no NUL), then given to bcrypt. All characters
count, any length up to the policy's maximum works, and bcrypt never sees more than 72 bytes.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
from functools import cache
from importlib import resources

import bcrypt

from server.errors import ValidationFailed

MIN_LENGTH = 12
MAX_LENGTH = 128


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())


@cache
def common_passwords() -> frozenset[str]:
    """The shipped common-password list, lower-cased."""
    data = resources.files("server.security") / "data"
    with (data / "common-passwords.txt.gz").open("rb") as raw, gzip.open(raw, "rt") as text:
        words = {line.strip().lower() for line in text}
    extra = (data / "common-passwords-extra.txt").read_text(encoding="utf-8")
    words.update(line.strip().lower() for line in extra.splitlines())
    words.discard("")
    return frozenset(words)


def check_password_policy(password: str, field: str = "password") -> None:
    """Enforce length and the common-password list.

    Raises:
        ValidationFailed: too short, too long, or too common.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValidationFailed.field(
            field,
            f"Password must be {MIN_LENGTH}..{MAX_LENGTH} characters",
            "Use a passphrase of several words",
        )
    if password.strip().lower() in common_passwords():
        raise ValidationFailed.field(
            field, "This password is too common", "Choose a password that is not a common one"
        )


class PasswordHasher:
    """bcrypt in worker threads, with a bound on concurrent hashes."""

    def __init__(self, rounds: int = 12, max_concurrency: int = 4) -> None:
        self._rounds = rounds
        self._slots = asyncio.Semaphore(max_concurrency)
        self._dummy: bytes | None = None

    async def hash(self, password: str) -> str:
        """Return a bcrypt hash of ``password``."""
        salt = bcrypt.gensalt(self._rounds)
        async with self._slots:
            hashed = await asyncio.to_thread(bcrypt.hashpw, _prehash(password), salt)
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check ``password``; with ``hashed=None`` spend the same time and return False.

        Hashing a dummy for unknown accounts keeps "no such user" and "wrong password"
        indistinguishable by timing.
        """
        target = hashed.encode("ascii") if hashed else await self._dummy_hash()
        async with self._slots:
            matched = await asyncio.to_thread(bcrypt.checkpw, _prehash(password), target)
        return matched and hashed is not None

    async def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            self._dummy = (await self.hash("dummy password for timing")).encode("ascii")
        return self._dummy
