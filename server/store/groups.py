"""Study group, membership, invite and assignment queries (never commit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.store.listing import AnySelect
from server.store.locks import for_update
from server.store.models import (
    Assignment,
    Invite,
    Membership,
    Message,
    StudyGroup,
    User,
    Visibility,
)


def groups_visible_to(viewer: uuid.UUID) -> AnySelect:
    """Live groups the viewer may see (public ones and their own), with the viewer's role."""
    return (
        select(StudyGroup, Membership.role)
        .outerjoin(
            Membership, and_(Membership.group_id == StudyGroup.id, Membership.user_id == viewer)
        )
        .where(
            StudyGroup.deleted_at.is_(None),
            or_(StudyGroup.visibility == Visibility.PUBLIC.value, Membership.user_id.is_not(None)),
        )
    )


async def get_group(
    session: AsyncSession, group_id: uuid.UUID, *, lock: bool = False
) -> StudyGroup | None:
    """A live (not soft-deleted) group; ``lock`` locks it until the transaction ends."""
    statement = select(StudyGroup).where(StudyGroup.id == group_id, StudyGroup.deleted_at.is_(None))
    if lock:
        statement = await for_update(session, statement)
    return await session.scalar(statement)


async def get_membership(
    session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """A user's membership of a group."""
    return await session.get(Membership, (group_id, user_id))


async def get_standings(
    session: AsyncSession, group_id: uuid.UUID
) -> tuple[str, dict[uuid.UUID, str]] | None:
    """A live group's visibility and every member's role, or None (no such group)."""
    rows = (
        await session.execute(
            select(StudyGroup.visibility, Membership.user_id, Membership.role)
            .outerjoin(Membership, Membership.group_id == StudyGroup.id)
            .where(StudyGroup.id == group_id, StudyGroup.deleted_at.is_(None))
        )
    ).all()
    if not rows:
        return None
    return rows[0][0], {row[1]: row[2] for row in rows if row[1] is not None}


def members_of(group_id: uuid.UUID) -> AnySelect:
    """A group's members with their names, for listing."""
    return (
        select(Membership, User.username, User.display_name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.group_id == group_id)
    )


async def add_member(
    session: AsyncSession, group: StudyGroup, user_id: uuid.UUID, role: str
) -> Membership:
    """Insert a membership and bump the group's member count."""
    membership = Membership(group_id=group.id, user_id=user_id, role=role)
    session.add(membership)
    group.member_count += 1
    await session.flush()
    return membership


async def remove_member(session: AsyncSession, group: StudyGroup, user_id: uuid.UUID) -> None:
    """Delete a membership and lower the group's member count."""
    await session.execute(
        delete(Membership).where(Membership.group_id == group.id, Membership.user_id == user_id)
    )
    group.member_count -= 1


async def member_ids(session: AsyncSession, group_id: uuid.UUID) -> list[uuid.UUID]:
    """Every member's id."""
    return list(
        await session.scalars(select(Membership.user_id).where(Membership.group_id == group_id))
    )


async def pending_invite(
    session: AsyncSession, group_id: uuid.UUID, invitee_id: uuid.UUID, now: datetime
) -> Invite | None:
    """A live pending invite of ``invitee_id`` into the group."""
    return await session.scalar(
        select(Invite).where(
            Invite.group_id == group_id,
            Invite.invitee_id == invitee_id,
            Invite.status == "pending",
            Invite.expires_at > now,
        )
    )


async def settle_invites(
    session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> None:
    """Mark the user's live invites into the group accepted: they are in, however they came.

    An invite left pending would outlive the membership: accepted after a kick, it would let
    the user back in; and it would refuse the admins' next invite as a duplicate.
    """
    await session.execute(
        update(Invite)
        .where(
            Invite.group_id == group_id,
            Invite.invitee_id == user_id,
            Invite.status == "pending",
            Invite.expires_at > now,
        )
        .values(status="accepted")
    )


async def get_invite(session: AsyncSession, invite_id: uuid.UUID) -> Invite | None:
    """An invite by id."""
    return await session.get(Invite, invite_id)


def invites_of(invitee_id: uuid.UUID) -> AnySelect:
    """Invites addressed to a user, in live groups, with each group's name."""
    return (
        select(Invite, StudyGroup.name)
        .join(StudyGroup, StudyGroup.id == Invite.group_id)
        .where(Invite.invitee_id == invitee_id, StudyGroup.deleted_at.is_(None))
    )


async def get_assignment(
    session: AsyncSession, group_id: uuid.UUID, assignment_id: uuid.UUID
) -> Assignment | None:
    """A live assignment of a group."""
    return await session.scalar(
        select(Assignment).where(
            Assignment.id == assignment_id,
            Assignment.group_id == group_id,
            Assignment.deleted_at.is_(None),
        )
    )


def assignments_of(group_id: uuid.UUID) -> AnySelect:
    """A group's live assignments."""
    return select(Assignment).where(
        Assignment.group_id == group_id, Assignment.deleted_at.is_(None)
    )


async def set_read_marker(
    session: AsyncSession, group_id: uuid.UUID, user_id: uuid.UUID, seq: int
) -> int:
    """Move the read marker forward (never back); return where it is now."""
    await session.execute(
        update(Membership)
        .where(
            Membership.group_id == group_id,
            Membership.user_id == user_id,
            Membership.last_read_seq < seq,
        )
        .values(last_read_seq=seq)
        .execution_options(synchronize_session=False)
    )
    marker = await session.scalar(
        select(Membership.last_read_seq).where(
            Membership.group_id == group_id, Membership.user_id == user_id
        )
    )
    return int(marker or 0)


async def unread_counts(
    session: AsyncSession, user_id: uuid.UUID
) -> list[tuple[uuid.UUID, int, int, int]]:
    """``(group_id, unread, last_seq, last_read_seq)`` for each of the user's groups."""
    rows = await session.execute(unread_statement(user_id))
    return [(row[0], int(row[1]), int(row[2]), int(row[3])) for row in rows]


def unread_statement(user_id: uuid.UUID) -> AnySelect:
    """The query behind :func:`unread_counts`.

    Unread counts live messages after the marker written by someone else.
    """
    unread = (
        select(func.count(Message.id))
        .where(
            Message.group_id == Membership.group_id,
            Message.seq > Membership.last_read_seq,
            Message.deleted_at.is_(None),
            or_(Message.author_id.is_(None), Message.author_id != user_id),
        )
        .correlate(Membership)
        .scalar_subquery()
    )
    last_seq = (
        select(func.coalesce(func.max(Message.seq), 0))
        .where(Message.group_id == Membership.group_id)
        .correlate(Membership)
        .scalar_subquery()
    )
    return (
        select(Membership.group_id, unread, last_seq, Membership.last_read_seq)
        .join(StudyGroup, StudyGroup.id == Membership.group_id)
        .where(Membership.user_id == user_id, StudyGroup.deleted_at.is_(None))
        .order_by(Membership.joined_at, Membership.group_id)
    )
