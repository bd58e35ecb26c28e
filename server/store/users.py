"""User and refresh-token queries. Each function runs one statement and never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import RefreshToken, User


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user with ``user_id``."""
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this (lower-cased) email."""
    return await session.scalar(select(User).where(User.email == email))


async def find_taken(session: AsyncSession, email: str, username: str) -> set[str]:
    """Which of ``email`` and ``username`` already belong to someone."""
    rows = await session.execute(
        select(User.email, User.username).where(or_(User.email == email, User.username == username))
    )
    taken: set[str] = set()
    for row_email, row_username in rows:
        if row_email == email:
            taken.add("email")
        if row_username == username:
            taken.add("username")
    return taken


async def password_changed_at(session: AsyncSession, user_id: uuid.UUID) -> datetime | None:
    """When the user last set their password; None if there is no such user."""
    return await session.scalar(select(User.password_changed_at).where(User.id == user_id))


async def claim_mfa_step(session: AsyncSession, user_id: uuid.UUID, step: int) -> bool:
    """Record ``step`` as the last used TOTP step unless a later one was used already.

    Atomic, so one code cannot be accepted twice even by concurrent requests.
    """
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.mfa_last_step < step)
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """The refresh token with this hash."""
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


async def mark_refresh_used(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Mark a token used if it is still fresh; False when someone used or revoked it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def family_revoked(session: AsyncSession, family_id: uuid.UUID) -> bool:
    """Whether any token of the family was revoked (so every token of it is dead).

    A rotation stores its new token after marking the old one used; a revocation racing it
    may mark the family's tokens before the new one exists. Asking for the family, not the
    token, refuses that one too.
    """
    revoked = select(RefreshToken.id).where(
        RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None)
    )
    return bool(await session.scalar(select(revoked.exists())))


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    """Revoke every token of a family."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_user_families(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, keep: uuid.UUID | None = None
) -> None:
    """Revoke every family of a user except ``keep``."""
    statement = update(RefreshToken).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(RefreshToken.family_id != keep)
    await session.execute(
        statement.values(revoked_at=now).execution_options(synchronize_session=False)
    )
