"""Invitations into a group: invite, list, accept, decline; expiry after 7 days."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.frames import InviteNotice
from protocol.objects import Invite as InviteObject
from protocol.objects import Member
from server.errors import Conflict, NotFound
from server.services.access import authorize, load_group
from server.services.clock import Clock
from server.services.events import Events
from server.services.groups import GroupService
from server.services.notifications import NotificationOutbox
from server.services.notify import Notifier
from server.services.policy import Action
from server.services.views import invite_view
from server.store import groups as repo
from server.store import users as user_repo
from server.store.base import utcnow
from server.store.db import Database
from server.store.listing import FilterDef, ListQuery, ListSpec, choice_schema, fetch_page
from server.store.models import Invite, InviteStatus, NotificationKind

INVITE_TTL = timedelta(days=7)


def _status_filter(value: str, _viewer: uuid.UUID | None) -> ColumnElement[bool]:
    """``filter[status]``: a pending invite past its expiry counts as expired."""
    wanted, now = InviteStatus(value.lower()), utcnow()
    pending = Invite.status == InviteStatus.PENDING.value
    if wanted is InviteStatus.PENDING:
        return and_(pending, Invite.expires_at > now)
    if wanted is InviteStatus.EXPIRED:
        return or_(Invite.status == wanted.value, and_(pending, Invite.expires_at <= now))
    return Invite.status == wanted.value


INVITE_LIST = ListSpec(
    sorts={"created_at": Invite.created_at, "expires_at": Invite.expires_at},
    default_sort="-created_at",
    tiebreak=Invite.id,
    filters={
        "status": FilterDef(
            _status_filter,
            "pending, accepted, declined or expired (case-insensitive).",
            choice_schema(tuple(status.value for status in InviteStatus)),
        )
    },
    created=Invite.created_at,
)


class InviteService:
    """Invitations."""

    def __init__(
        self,
        db: Database,
        groups: GroupService,
        notifier: Notifier,
        events: Events,
        outbox: NotificationOutbox,
        clock: Clock,
    ) -> None:
        self._db = db
        self._groups = groups
        self._notifier = notifier
        self._events = events
        self._outbox = outbox
        self._clock = clock

    async def invite(
        self, inviter_id: uuid.UUID, group_id: uuid.UUID, invitee_id: uuid.UUID
    ) -> InviteObject:
        """Invite a user (owner and admins); the invitee is told live and gets a notification.

        Raises:
            NotFound: no such user.
            Conflict: already a member, or already invited.
        """
        now = self._clock.now()
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, inviter_id, Action.INVITE, lock=True)
            if await user_repo.get_user(session, invitee_id) is None:
                raise NotFound("No such user")
            if await repo.get_membership(session, group_id, invitee_id) is not None:
                raise Conflict("That user is already a member")
            if await repo.pending_invite(session, group_id, invitee_id, now) is not None:
                raise Conflict("That user already has a pending invite")
            invite = Invite(
                group_id=group_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                expires_at=now + INVITE_TTL,
                created_at=now,
            )
            session.add(invite)
            await session.flush()
            view = invite_view(invite, now, loaded.group.name)
            staged = await self._events.stage(
                session, [(group_id, str(invite.id), view)], "invite.created"
            )
            events = await self._outbox.stage(
                session,
                NotificationKind.INVITE_RECEIVED,
                [(group_id, inviter_id, str(invite.id), view)],
            )
        await self._events.release(staged)
        await self._outbox.release(events)
        await self._notifier.to_user(invitee_id, InviteNotice(invite=view))
        return view

    async def mine(self, user_id: uuid.UUID, query: ListQuery) -> tuple[list[InviteObject], int]:
        """Invites addressed to the user."""
        now = self._clock.now()
        async with self._db.session() as session:
            rows, total = await fetch_page(session, repo.invites_of(user_id), query)
        return [invite_view(row[0], now, row[1]) for row in rows], total

    async def accept(self, user_id: uuid.UUID, invite_id: uuid.UUID) -> Member:
        """Join through an invite.

        Raises:
            NotFound: not the user's invite.
            Conflict: expired, already answered, already a member, or the group is full.
        """
        async with self._db.session() as session, session.begin():
            invite = await self._pending(session, user_id, invite_id)
            loaded = await load_group(session, invite.group_id, user_id, lock=True)
            if loaded.role is not None:
                raise Conflict("You are already a member of this group")
            membership = await self._groups.admit(session, loaded.group, user_id)  # accepts it
            member, staged = await self._groups.stage_joined(session, membership)
        await self._groups.welcome(invite.group_id, member, staged)
        return member

    async def decline(self, user_id: uuid.UUID, invite_id: uuid.UUID) -> InviteObject:
        """Turn an invite down.

        Raises:
            NotFound: not the user's invite.
            Conflict: expired or already answered.
        """
        async with self._db.session() as session, session.begin():
            invite = await self._pending(session, user_id, invite_id)
            invite.status = InviteStatus.DECLINED.value
            group = await repo.get_group(session, invite.group_id)
        return invite_view(invite, self._clock.now(), group.name if group else "")

    async def _pending(
        self, session: AsyncSession, user_id: uuid.UUID, invite_id: uuid.UUID
    ) -> Invite:
        invite = await repo.get_invite(session, invite_id)
        if invite is None or invite.invitee_id != user_id:
            raise NotFound("Invite not found")
        if invite.status != InviteStatus.PENDING.value:
            raise Conflict(f"This invite was already {invite.status}")
        if invite.expires_at <= self._clock.now():
            raise Conflict("This invite has expired")
        if await repo.get_group(session, invite.group_id) is None:
            raise NotFound("Invite not found")
        return invite
