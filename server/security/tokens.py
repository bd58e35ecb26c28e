"""Access tokens (JWT) and opaque refresh tokens.

Access tokens are signed with one pinned algorithm and carry ``sub, iat, nbf, exp, iss, aud,
jti``; the header's ``kid`` names the key, so keys can rotate (old keys verify, the current one
signs). ``iat`` has millisecond precision so a token issued in the same second as a password
change is still ordered correctly against it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from server.errors import Unauthorized
from server.settings import Settings

REQUIRED_CLAIMS = ("sub", "iat", "nbf", "exp", "iss", "aud", "jti")
LEEWAY_S = 5
"""Clock skew between nodes tolerated on ``exp``, ``nbf`` and ``iat``."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as proven by a verified access token."""

    user_id: uuid.UUID
    token_id: str
    issued_at: float
    expires_at: float
    session_id: uuid.UUID | None = None

    @property
    def accepted_until(self) -> float:
        """The last moment the token is accepted: its ``exp`` plus the leeway."""
        return self.expires_at + LEEWAY_S


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly signed access token."""

    token: str
    expires_in: int
    principal: Principal


@dataclass(frozen=True, slots=True)
class Key:
    """A verification (and possibly signing) key."""

    kid: str
    algorithm: str
    verify: Any
    sign: Any = None


def load_keys(settings: Settings) -> tuple[Key, dict[str, Key]]:
    """Build the signing key and every verification key from settings.

    ``JWT_PRIVATE_KEY_FILE``/``JWT_PUBLIC_KEY_FILE`` select an asymmetric algorithm
    (``JWT_ALGORITHM``, e.g. ``EdDSA`` or ``RS256``); otherwise ``JWT_SECRET`` with HS256.
    ``JWT_PREVIOUS_KEYS`` lists ``kid:secret`` pairs still accepted for verification.
    """
    if settings.jwt_private_key_file and settings.jwt_public_key_file:
        private = Path(settings.jwt_private_key_file).read_text(encoding="utf-8")
        public = Path(settings.jwt_public_key_file).read_text(encoding="utf-8")
        current = Key(settings.jwt_key_id, settings.jwt_algorithm, public, private)
    else:
        shared = settings.jwt_secret.encode()
        current = Key(settings.jwt_key_id, "HS256", shared, shared)
    keys = {current.kid: current}
    for entry in settings.jwt_previous_keys:
        kid, _, previous = entry.partition(":")
        keys[kid] = Key(kid, "HS256", previous.encode())
    return current, keys


class TokenCodec:
    """Issues and verifies access tokens."""

    def __init__(
        self,
        signing_key: Key,
        keys: dict[str, Key],
        *,
        issuer: str,
        audience: str,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signing = signing_key
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_s
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.time
    ) -> TokenCodec:
        """Build from the node's settings."""
        current, keys = load_keys(settings)
        return cls(
            current,
            keys,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=settings.access_token_ttl_s,
            clock=clock,
        )

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID | None = None) -> IssuedToken:
        """Sign a new access token for ``user_id``, tied to refresh family ``session_id``."""
        now = round(self._clock(), 3)
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "iat": now,
            "nbf": int(now),
            "exp": int(now) + self._ttl,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        token = jwt.encode(
            claims,
            self._signing.sign,
            algorithm=self._signing.algorithm,
            headers={"kid": self._signing.kid},
        )
        principal = Principal(user_id, claims["jti"], now, claims["exp"], session_id)
        return IssuedToken(token, self._ttl, principal)

    def verify(self, token: str) -> Principal:
        """Verify signature, algorithm, audience, issuer and times.

        Raises:
            Unauthorized: for any defect; the reason is not disclosed.
        """
        try:
            key = self._keys[jwt.get_unverified_header(token).get("kid", "")]
            claims = jwt.decode(
                token,
                key.verify,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=LEEWAY_S,
            )
            sid = claims.get("sid")
            return Principal(
                uuid.UUID(claims["sub"]),
                str(claims["jti"]),
                float(claims["iat"]),
                float(claims["exp"]),
                uuid.UUID(sid) if sid else None,
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError, AttributeError):
            raise Unauthorized("Invalid or expired access token") from None


def new_opaque_token() -> str:
    """A random refresh token (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 of an opaque token, as stored (the token itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()
