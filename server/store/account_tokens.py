"""Emailed account token queries (verification, password reset). Never commit."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.models import AccountToken, User


async def claim_token(
    session: AsyncSession, token_hash: str, purpose: str, now: datetime
) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """Use the live token of ``purpose`` with this hash: ``(id, user_id, email)``, or None.

    One ``UPDATE ... WHERE used_at IS NULL``: of two concurrent uses exactly one gets it.
    """
    result = await session.execute(
        update(AccountToken)
        .where(
            AccountToken.token_hash == token_hash,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(AccountToken.id, AccountToken.user_id, AccountToken.email)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    return None if row is None else (row[0], row[1], row[2])


async def unclaim_token(session: AsyncSession, token_id: uuid.UUID) -> None:
    """Give a claimed token back (the request that claimed it failed for another reason)."""
    await session.execute(
        update(AccountToken)
        .where(AccountToken.id == token_id)
        .values(used_at=None)
        .execution_options(synchronize_session=False)
    )


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
