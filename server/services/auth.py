"""Registration, login, refresh-token families, logout, MFA, and access-token checks."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.objects import UserPrivate
from server.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    MfaRequired,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from server.observability.audit import AuditEvent, audit
from server.security import mfa
from server.security.crypto import SecretBox
from server.security.passwords import PasswordHasher, check_password_policy
from server.security.ratelimit import Rate, RateLimiter
from server.security.sanitize import clean_email, clean_text, clean_username
from server.security.tokens import IssuedToken, Principal, TokenCodec, hash_token, new_opaque_token
from server.services.clock import Clock
from server.services.events import VERIFY_EMAIL_JOB, Jobs
from server.services.views import user_private
from server.singleflight import SingleFlight
from server.store import account_tokens
from server.store import users as repo
from server.store.db import Database
from server.store.models import RefreshToken, TokenPurpose, User

INVALID_LOGIN = "Invalid email or password"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """What a successful login or refresh hands out."""

    access: IssuedToken
    refresh_token: str
    user: UserPrivate


@dataclass(frozen=True, slots=True)
class MfaSetup:
    """A new TOTP secret, shown once."""

    secret: str
    otpauth_uri: str


CREDENTIALS_TTL_S = 60.0
MAX_CACHED_CREDENTIALS = 100_000


class AuthService:
    """Accounts' credentials and sessions."""

    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        box: SecretBox,
        clock: Clock,
        refresh_ttl_s: int,
        jobs: Jobs,
        *,
        limiter: RateLimiter,
        reauth_rate: Rate,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self._reauth_rate = reauth_rate
        self._jobs = jobs
        self._hasher = hasher
        self._tokens = tokens
        self._box = box
        self._clock = clock
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._credentials: dict[uuid.UUID, tuple[float, float | None]] = {}
        """User -> (cached until, their last password change as a timestamp, or None)."""
        self._loading: SingleFlight[uuid.UUID, float | None] = SingleFlight()

    async def register(
        self, *, email: str, username: str, password: str, display_name: str | None
    ) -> UserPrivate:
        """Create an account; the worker then emails a verification link.

        Raises:
            ValidationFailed: bad email, username, password or display name.
            Conflict: email or username taken (case-insensitively).
        """
        email, username = clean_email(email), clean_username(username)
        check_password_policy(password)
        name = clean_text(
            display_name or username,
            field="display_name",
            min_length=1,
            max_length=100,
            not_blank=True,
        )
        async with self._db.session() as session:
            taken = await repo.find_taken(session, email, username)
        if taken:
            raise _taken(taken)
        user = User(
            email=email,
            username=username,
            display_name=name,
            bio="",
            password_hash=await self._hasher.hash(password),
        )
        try:
            async with self._db.session() as session, session.begin():
                session.add(user)
        except IntegrityError:
            raise _taken({"email", "username"}) from None
        try:
            await self._jobs.queue(VERIFY_EMAIL_JOB, str(user.id))
        except Exception:  # the account exists; POST /auth/email/resend asks again
            log.exception("could not queue the verification email")
        return user_private(user)

    async def login(self, *, email: str, password: str, totp_code: str | None) -> SessionTokens:
        """Check credentials (and the second factor) and open a new session family.

        Raises:
            Unauthorized: unknown email or wrong password (indistinguishable).
            MfaRequired: MFA is on and the code is missing, wrong or already used.
        """
        async with self._db.session() as session:
            user = await repo.get_user_by_email(session, email.strip().lower())
        matched = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not matched:
            audit(AuditEvent.SIGN_IN_FAILED, user.id if user else None, reason="credentials")
            raise Unauthorized(INVALID_LOGIN)
        try:
            await self.require_second_factor(user, totp_code)
        except MfaRequired:
            audit(AuditEvent.SIGN_IN_FAILED, user.id, reason="second_factor")
            raise
        audit(AuditEvent.SIGN_IN, user.id)
        return await self._open_session(user, uuid.uuid4())

    async def refresh(self, refresh_token: str | None) -> SessionTokens:
        """Rotate a refresh token; reusing a rotated one revokes its whole family.

        Raises:
            Unauthorized: unknown, expired, revoked or reused token.
        """
        if not refresh_token:
            raise Unauthorized("No refresh token")
        now = self._clock.now()
        async with self._db.session() as session, session.begin():
            row = await repo.get_refresh_token(session, hash_token(refresh_token))
            if row is None or row.expires_at <= now or row.revoked_at is not None:
                raise Unauthorized("Invalid or expired refresh token")
            if await repo.family_revoked(session, row.family_id):  # a revocation raced its rotation
                raise Unauthorized("Invalid or expired refresh token")
            if not await repo.mark_refresh_used(session, row.id, now):
                await repo.revoke_family(session, row.family_id, now)
                reused = True
            else:
                reused = False
            user = await repo.get_user(session, row.user_id)
        if reused:
            audit(AuditEvent.REFRESH_REUSED, row.user_id)
        if reused or user is None:
            raise Unauthorized("Refresh token reused; the session was revoked")
        return await self._open_session(user, row.family_id)

    async def logout(self, refresh_token: str | None) -> None:
        """Revoke the family of ``refresh_token``, if it names one."""
        if not refresh_token:
            return
        async with self._db.session() as session, session.begin():
            row = await repo.get_refresh_token(session, hash_token(refresh_token))
            if row is not None:
                await repo.revoke_family(session, row.family_id, self._clock.now())

    async def authenticate(self, access_token: str) -> Principal:
        """Verify an access token and that it postdates the user's last password change.

        Raises:
            Unauthorized: invalid token, deleted user, or issued before a password change.
        """
        principal = self._tokens.verify(access_token)
        changed = await self._changed_at(principal.user_id)
        if changed is None or principal.issued_at < changed:
            raise Unauthorized("Invalid or expired access token")
        return principal

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop what is cached of the user's credentials (they changed, here or elsewhere)."""
        self._credentials.pop(user_id, None)

    async def _changed_at(self, user_id: uuid.UUID) -> float | None:
        """The user's last password change, cached briefly; None for no such user.

        Every node forgets a user's entry when their password changes or the account goes
        (the services announce it), so the cache only saves reads; ``CREDENTIALS_TTL_S``
        bounds it should an announcement be lost.
        """
        entry = self._credentials.get(user_id)
        if entry is not None and entry[0] > self._clock.time():
            return entry[1]
        return await self._loading.do(user_id, lambda: self._load_changed_at(user_id))

    async def _load_changed_at(self, user_id: uuid.UUID) -> float | None:
        async with self._db.session() as session:
            changed = await repo.password_changed_at(session, user_id)
        value = changed.timestamp() if changed is not None else None
        if len(self._credentials) >= MAX_CACHED_CREDENTIALS:
            self._credentials.clear()
        self._credentials[user_id] = (self._clock.time() + CREDENTIALS_TTL_S, value)
        return value

    async def setup_mfa(self, user_id: uuid.UUID) -> MfaSetup:
        """Generate a TOTP secret to confirm with :meth:`enable_mfa`.

        Raises:
            Conflict: MFA is already on.
        """
        secret = mfa.new_secret()
        async with self._db.session() as session, session.begin():
            user = await self._user(session, user_id)
            if user.mfa_enabled:
                raise Conflict("MFA is already enabled; disable it first")
            user.mfa_secret = self._box.seal(secret)
            email = user.email
        return MfaSetup(secret, mfa.otpauth_uri(secret, email))

    async def enable_mfa(self, user_id: uuid.UUID, code: str) -> UserPrivate:
        """Turn MFA on once the user proves they hold the secret.

        Raises:
            Conflict: already on, or no secret was set up.
            ValidationFailed: the code does not match (or was used).
        """
        async with self._db.session() as session, session.begin():
            user = await self._user(session, user_id)
            if user.mfa_enabled or user.mfa_secret is None:
                raise Conflict(
                    "Call /auth/mfa/setup first"
                    if not user.mfa_enabled
                    else "MFA is already enabled"
                )
            step = mfa.match_step(
                self._box.open(user.mfa_secret), code, self._clock.time(), user.mfa_last_step
            )
            if step is None or not await repo.claim_mfa_step(session, user_id, step):
                raise _bad_code()
            user.mfa_enabled = True
        audit(AuditEvent.MFA_ENABLED, user_id)
        return user_private(user)

    async def disable_mfa(self, user_id: uuid.UUID, code: str, password: str) -> UserPrivate:
        """Turn MFA off; needs the password and a fresh code.

        A wrong code is a 400 naming ``code``, as for enabling: the caller is signed in, and a
        401 (``MFA_REQUIRED``, the sign-in answer) reads as a session ended to generic clients.

        Raises:
            Conflict: MFA is off.
            Forbidden: wrong password.
            ValidationFailed: bad code.
        """
        async with self._db.session() as session:
            user = await self._user(session, user_id)
        if not user.mfa_enabled:
            raise Conflict("MFA is not enabled")
        await self.verify_password(user, password)
        try:
            await self.require_second_factor(user, code)
        except MfaRequired:
            raise _bad_code() from None
        async with self._db.session() as session, session.begin():
            user = await self._user(session, user_id)
            user.mfa_enabled, user.mfa_secret = False, None
        audit(AuditEvent.MFA_DISABLED, user_id)
        return user_private(user)

    async def verify_password(self, user: User, password: str) -> None:
        """Re-authentication for sensitive operations, limited per user as sign-in is.

        A stolen access token must not make these a password oracle at the general rate.

        Raises:
            RateLimited: over the user's re-authentication rate (no hash is computed).
            Forbidden: wrong password.
        """
        await self._limit(f"reauth:{user.id}", "Too many password attempts; wait a minute")
        if not await self._hasher.verify(password, user.password_hash):
            raise Forbidden("Wrong password")

    async def require_second_factor(self, user: User, code: str | None) -> None:
        """When MFA is on, accept ``code`` once.

        Codes tried are limited per user (sign-in, a reset link, disabling MFA), so guesses
        spread over many addresses get no further than guesses from one.

        Raises:
            RateLimited: over the user's rate of codes tried.
            MfaRequired: missing, wrong or replayed code.
        """
        if not user.mfa_enabled or user.mfa_secret is None:
            return
        if code:
            await self._limit(f"mfa:{user.id}", "Too many codes tried; wait a minute")
        step = mfa.match_step(
            self._box.open(user.mfa_secret), code, self._clock.time(), user.mfa_last_step
        )
        if step is None or not await self._claim_step(user.id, step):
            raise MfaRequired
        user.mfa_last_step = step

    async def _limit(self, key: str, message: str) -> None:
        """Count one attempt on the user's ``key`` at the auth rate.

        Raises:
            RateLimited: over it.
        """
        decision = await self._limiter.hit(key, self._reauth_rate)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, message, decision.headers())

    async def _claim_step(self, user_id: uuid.UUID, step: int) -> bool:
        async with self._db.session() as session, session.begin():
            return await repo.claim_mfa_step(session, user_id, step)

    async def set_password(
        self, user_id: uuid.UUID, new_password: str, keep_session: uuid.UUID | None
    ) -> IssuedToken:
        """Store a new password, revoke other sessions and earlier access tokens.

        Reset links sent before are voided too: whoever reads an old email of the user's can
        no longer set a password the user did not choose.

        Returns:
            A fresh access token for the caller's session.
        """
        check_password_policy(new_password, "new_password")
        hashed = await self._hasher.hash(new_password)
        now = self._clock.now()
        async with self._db.session() as session, session.begin():
            user = await self._user(session, user_id)
            user.password_hash, user.password_changed_at = hashed, now
            await repo.revoke_user_families(session, user_id, now, keep=keep_session)
            reset = TokenPurpose.RESET_PASSWORD.value
            await account_tokens.void_tokens(session, user_id, reset, now)
        self.forget(user_id)
        return self._tokens.issue(user_id, keep_session)

    async def _open_session(self, user: User, family_id: uuid.UUID) -> SessionTokens:
        token = new_opaque_token()
        async with self._db.session() as session, session.begin():
            session.add(
                RefreshToken(
                    user_id=user.id,
                    family_id=family_id,
                    token_hash=hash_token(token),
                    expires_at=self._clock.now() + self._refresh_ttl,
                )
            )
        return SessionTokens(self._tokens.issue(user.id, family_id), token, user_private(user))

    @staticmethod
    async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await repo.get_user(session, user_id)
        if user is None:
            raise Unauthorized("The account no longer exists")
        return user


def _taken(fields: set[str]) -> Conflict:
    problems = [
        FieldProblem(
            name,
            f"This {name} is already registered",
            f"Choose another {name}" if name == "username" else "Log in instead",
        )
        for name in sorted(fields)
    ]
    return Conflict("Account already exists", {"fields": [p.as_dict() for p in problems]})


def _bad_code() -> ValidationFailed:
    """A TOTP code refused to a signed-in user (enabling or disabling MFA)."""
    return ValidationFailed.field(
        "code", "Invalid or already used code", "Enter the current 6-digit code"
    )
