"""Emailed account token queries (verification, password reset). Never commit."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import AccountToken, User


async def live_token(
    session: AsyncSession, token_hash: str, purpose: str, now: datetime
) -> AccountToken | None:
    """The unused, unexpired token of ``purpose`` with this hash."""
    return await session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == token_hash,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
    )


async def use_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Mark a token used unless someone used it first (atomic: single use under races)."""
    result = await session.execute(
        update(AccountToken)
        .where(AccountToken.id == token_id, AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def void_tokens(
    session: AsyncSession, user_id: uuid.UUID, purpose: str, now: datetime
) -> None:
    """Use up every open token of ``purpose`` of the user (a newer one replaces them)."""
    await session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_verified(
    session: AsyncSession, user_id: uuid.UUID, email: str, now: datetime
) -> bool:
    """Record the user's address as verified, if it is still ``email``."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.email == email)
        .values(email_verified_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_expired(session: AsyncSession, before: datetime) -> int:
    """Delete tokens that expired before ``before``; return how many."""
    result = await session.execute(
        delete(AccountToken)
        .where(AccountToken.expires_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
