"""Email verification and password reset.

Requests only queue jobs: registering, ``resend`` and ``forgot`` send nothing themselves; the
worker creates the token and sends the email (so the plain token exists only in the worker's
memory and in the email; the database keeps its SHA-256). Tokens are random (256 bits),
single use (an atomic ``UPDATE ... WHERE used_at IS NULL``) and expire: verification after
7 days, reset after 30 minutes, and a newer reset request voids the older links.

``forgot`` does the same work for every well-formed address, registered or not (it queues the
job; the worker finds no account and sends nothing), so its answer and timing say nothing
about who has an account. A reset does what a password change does
(:meth:`UserService.replace_password`) and asks for the TOTP code when MFA is on.
Verification gates notification emails only: signing in never needs it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from protocol.objects import UserPrivate
from server.errors import MfaRequired, ValidationFailed
from server.observability.audit import AuditEvent, audit
from server.security.passwords import check_password_policy
from server.security.sanitize import clean_email
from server.security.tokens import hash_token, new_opaque_token
from server.services.auth import AuthService
from server.services.clock import Clock
from server.services.events import RESET_EMAIL_JOB, VERIFY_EMAIL_JOB, Jobs
from server.services.mail import Letter, Postman, plain
from server.services.users import UserService
from server.store import account_tokens as repo
from server.store import users as user_repo
from server.store.db import Database
from server.store.models import AccountToken, TokenPurpose, User

VERIFY_TTL = timedelta(days=7)
RESET_TTL = timedelta(minutes=30)
VERIFY_PATH = "/verify-email?token="
RESET_PATH = "/reset-password?token="


def _bad_token() -> ValidationFailed:
    return ValidationFailed.field(
        "token",
        "Invalid, used or expired token",
        "Ask for a new link: POST /auth/email/resend or /auth/password/forgot",
    )


class AccountRecovery:
    """Verification and reset links: asked for by requests, sent by the worker, used once."""

    def __init__(
        self,
        db: Database,
        auth: AuthService,
        users: UserService,
        jobs: Jobs,
        postman: Postman,
        clock: Clock,
    ) -> None:
        self._db = db
        self._auth = auth
        self._users = users
        self._jobs = jobs
        self._postman = postman
        self._clock = clock

    async def request_verification(self, user_id: uuid.UUID) -> None:
        """Queue a new verification email (none goes to an address already verified)."""
        await self._jobs.queue(VERIFY_EMAIL_JOB, str(user_id))

    async def request_reset(self, email: str) -> None:
        """Queue a reset email for ``email``: the same work whether it is registered or not.

        Raises:
            ValidationFailed: not a plausible address.
        """
        await self._jobs.queue(RESET_EMAIL_JOB, clean_email(email))

    async def verify(self, token: str) -> UserPrivate:
        """Use a verification token: the address it was sent to is verified.

        Raises:
            ValidationFailed: unknown, used, expired, or not a verification token.
        """
        now = self._clock.now()
        purpose = TokenPurpose.VERIFY_EMAIL.value
        async with self._db.session() as session, session.begin():
            claimed = await repo.claim_token(session, hash_token(token), purpose, now)
            if claimed is None:
                raise _bad_token()
            _, user_id, email = claimed
            await repo.mark_verified(session, user_id, email, now)
            await repo.void_tokens(session, user_id, purpose, now)
        return await self._users.me(user_id)

    async def reset(self, token: str, new_password: str, totp_code: str | None) -> UserPrivate:
        """Use a reset token to set a new password; every session and socket ends.

        The token is given back when the TOTP code is wrong, so the person can try again
        from the same link.

        Raises:
            ValidationFailed: the password breaks the policy; or the token is unknown, used,
                expired or of another kind.
            MfaRequired: MFA is on and the code is missing, wrong or already used.
        """
        check_password_policy(new_password, "new_password")
        now = self._clock.now()
        purpose = TokenPurpose.RESET_PASSWORD.value
        async with self._db.session() as session, session.begin():
            claimed = await repo.claim_token(session, hash_token(token), purpose, now)
            if claimed is None:
                raise _bad_token()
            token_id, user_id, _ = claimed
            await repo.void_tokens(session, user_id, purpose, now)
            user = await user_repo.get_user(session, user_id)
        try:
            # the token's row goes with its user (ON DELETE CASCADE): the user exists
            await self._auth.require_second_factor(user, totp_code)  # type: ignore[arg-type]
        except MfaRequired:
            async with self._db.session() as session, session.begin():
                await repo.unclaim_token(session, token_id)
            raise
        await self._users.replace_password(user_id, new_password, None)
        audit(AuditEvent.PASSWORD_RESET, user_id)
        return await self._users.me(user_id)

    async def send_verification(self, user_id: uuid.UUID) -> bool:
        """Create a verification token and email its link (the worker's job).

        Returns:
            False when there is nothing to send (no such user, or already verified).
        """
        async with self._db.session() as session, session.begin():
            user = await user_repo.get_user(session, user_id)
            if user is None or user.email_verified_at is not None:
                return False
            token, row = self._new_token(session, user, TokenPurpose.VERIFY_EMAIL, VERIFY_TTL)
        await self._postman.deliver(
            Letter(
                kind="verify_email",
                to_address=user.email,
                to_name=plain(user.display_name),
                subject="Confirm your email address for StudyBuddy",
                template="verify_email",
                values=self._values(user, VERIFY_PATH + token),
                message_key=f"verify.{row.id}",
            )
        )
        return True

    async def send_reset(self, email: str) -> bool:
        """Create a reset token (voiding older ones) and email its link (the worker's job).

        Returns:
            False when no account has this address (nothing is sent).
        """
        now = self._clock.now()
        purpose = TokenPurpose.RESET_PASSWORD
        async with self._db.session() as session, session.begin():
            user = await user_repo.get_user_by_email(session, email)
            if user is None:
                return False
            await repo.void_tokens(session, user.id, purpose.value, now)
            token, row = self._new_token(session, user, purpose, RESET_TTL)
        await self._postman.deliver(
            Letter(
                kind="password_reset",
                to_address=user.email,
                to_name=plain(user.display_name),
                subject="Reset your StudyBuddy password",
                template="reset_password",
                values=self._values(user, RESET_PATH + token),
                message_key=f"reset.{row.id}",
            )
        )
        return True

    def _new_token(
        self, session: AsyncSession, user: User, purpose: TokenPurpose, ttl: timedelta
    ) -> tuple[str, AccountToken]:
        token = new_opaque_token()
        row = AccountToken(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose.value,
            token_hash=hash_token(token),
            email=user.email,
            expires_at=self._clock.now() + ttl,
        )
        session.add(row)
        return token, row

    def _values(self, user: User, path: str) -> dict[str, str]:
        return {
            "name": plain(user.display_name),
            "email": user.email,
            "link": self._postman.composer.link(path),
        }
