"""Study groups and their membership: create, find, change, join, leave, kick, roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import msgspec
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.frames import MemberNotice, ServerFrame
from protocol.objects import Group, GroupMember, Member
from server.errors import Conflict, Forbidden, NotFound
from server.observability.metrics import GROUPS_CREATED
from server.services import policy
from server.services.access import GroupAccess, authorize, load_group
from server.services.clock import Clock
from server.services.events import Events
from server.services.notify import Notifier
from server.services.policy import Action
from server.services.views import group_view, member_view
from server.store import groups as repo
from server.store import notifications as notification_repo
from server.store.db import Database
from server.store.listing import (
    FilterDef,
    ListQuery,
    ListSpec,
    choice_filter,
    choice_schema,
    fetch_page,
    text_filter,
)
from server.store.models import Membership, Role, StudyGroup, User, Visibility


def _member_filter(value: str, _viewer: uuid.UUID | None) -> ColumnElement[bool]:
    if value.lower() != "me":
        raise ValueError("the only supported value is 'me'")
    return Membership.user_id.is_not(None)


GROUP_LIST = ListSpec(
    sorts={
        "created_at": StudyGroup.created_at,
        "name": StudyGroup.name,
        "member_count": StudyGroup.member_count,
    },
    default_sort="-created_at",
    tiebreak=StudyGroup.id,
    filters={
        "visibility": choice_filter(StudyGroup.visibility, ("public", "private")),
        "subject": text_filter(StudyGroup.subject, "Exact subject, case-insensitive."),
        "member": FilterDef(
            _member_filter, "'me' (any case): only groups you belong to.", choice_schema(("me",))
        ),
    },
    search=(StudyGroup.name, StudyGroup.description),
    created=StudyGroup.created_at,
)
MEMBER_LIST = ListSpec(
    sorts={"joined_at": Membership.joined_at, "username": User.username, "role": Membership.role},
    default_sort="joined_at",
    tiebreak=Membership.user_id,
    filters={"role": choice_filter(Membership.role, ("owner", "admin", "member"))},
    search=(User.username, User.display_name),
)


@dataclass(frozen=True, slots=True)
class GroupFields:
    """Editable group fields; None means unchanged."""

    name: str | None = None
    description: str | None = None
    subject: str | None = None
    visibility: str | None = None
    max_members: int | None = None
    clear_max_members: bool = False


def member_notice(
    group_id: uuid.UUID, user_id: uuid.UUID, action: str, role: Role | None
) -> MemberNotice:
    """The ``member`` frame of a roster change (``role`` None: the user is out)."""
    return MemberNotice(
        group_id=group_id,
        user_id=user_id,
        action=action,  # type: ignore[arg-type]
        role=None if role is None else role.value,
    )


class GroupService:
    """Groups and memberships."""

    def __init__(
        self,
        db: Database,
        access: GroupAccess,
        notifier: Notifier,
        events: Events,
        clock: Clock,
    ) -> None:
        self._db = db
        self._access = access
        self._notifier = notifier
        self._events = events
        self._clock = clock

    async def create(self, owner_id: uuid.UUID, fields: GroupFields) -> Group:
        """Create a group; the caller becomes its owner."""
        group = StudyGroup(
            name=fields.name,
            description=fields.description or "",
            subject=fields.subject or "",
            visibility=fields.visibility or Visibility.PUBLIC.value,
            max_members=fields.max_members,
            member_count=0,
            owner_id=owner_id,
        )
        async with self._db.session() as session, session.begin():
            session.add(group)
            await session.flush()
            await repo.add_member(session, group, owner_id, Role.OWNER.value)
        GROUPS_CREATED.inc()
        self._access.forget(group.id, owner_id)
        return group_view(group, Role.OWNER.value)

    async def find(self, viewer: uuid.UUID, query: ListQuery) -> tuple[list[Group], int]:
        """Public groups and the viewer's own (a lag-tolerant read)."""
        async with self._db.read_session(for_user=viewer) as session:
            rows, total = await fetch_page(session, repo.groups_visible_to(viewer), query)
        return [group_view(group, role) for group, role in rows], total

    async def get(self, viewer: uuid.UUID, group_id: uuid.UUID) -> Group:
        """One group the viewer may see.

        Raises:
            NotFound: absent, deleted, or private and the viewer is not a member.
        """
        async with self._db.session() as session:
            loaded = await load_group(session, group_id, viewer)
        policy.require(loaded.role, Action.VIEW_GROUP, Visibility(loaded.group.visibility))
        return group_view(loaded.group, loaded.role)

    async def update(self, viewer: uuid.UUID, group_id: uuid.UUID, fields: GroupFields) -> Group:
        """Change a group's details (owner and admins).

        Raises:
            Conflict: ``max_members`` below the current member count.
        """
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, viewer, Action.UPDATE_GROUP, lock=True)
            group = loaded.group
            if fields.max_members is not None and fields.max_members < group.member_count:
                raise Conflict(f"The group already has {group.member_count} members")
            for name in ("name", "description", "subject", "visibility", "max_members"):
                value = getattr(fields, name)
                if value is not None:
                    setattr(group, name, value)
            if fields.clear_max_members:
                group.max_members = None
        if fields.visibility is not None:
            self._access.forget(group_id)
            await self._notifier.roster_changed(group_id)
        return group_view(group, loaded.role)

    async def delete(self, viewer: uuid.UUID, group_id: uuid.UUID) -> None:
        """Soft-delete a group (owner only); its members stop receiving at once."""
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, viewer, Action.DELETE_GROUP, lock=True)
            loaded.group.deleted_at = self._clock.now()
            await notification_repo.forget_group(session, group_id)
        self._access.forget(group_id)
        await self._notifier.membership_changed(group_id, None)

    async def members(
        self, viewer: uuid.UUID, group_id: uuid.UUID, query: ListQuery
    ) -> tuple[list[Member], int]:
        """A group's members (a lag-tolerant read)."""
        async with self._db.read_session(for_user=viewer) as session:
            await authorize(session, group_id, viewer, Action.VIEW_MEMBERS)
            rows, total = await fetch_page(session, repo.members_of(group_id), query)
        return [member_view(m, username, name) for m, username, name in rows], total

    async def join(self, user_id: uuid.UUID, group_id: uuid.UUID) -> Member:
        """Join a public group.

        Raises:
            NotFound: private (and not a member) or absent.
            Conflict: already a member, or the group is full.
        """
        async with self._db.session() as session, session.begin():
            loaded = await load_group(session, group_id, user_id, lock=True)
            if loaded.role is not None:
                raise Conflict("You are already a member of this group")
            if loaded.group.visibility != Visibility.PUBLIC.value:
                raise NotFound("Study group not found")
            membership = await self.admit(session, loaded.group, user_id)
            member, staged = await self.stage_joined(session, membership)
        await self.welcome(group_id, member, staged)
        return member

    async def admit(
        self, session: AsyncSession, group: StudyGroup, user_id: uuid.UUID
    ) -> Membership:
        """Add a member within the caller's transaction, respecting the cap.

        Their pending invites into the group (a join needs none) are accepted with it.

        Raises:
            Conflict: the group is full.
        """
        if group.max_members is not None and group.member_count >= group.max_members:
            raise Conflict("The group is full")
        membership = await repo.add_member(session, group, user_id, Role.MEMBER.value)
        await repo.settle_invites(session, group.id, user_id, self._clock.now())
        return membership

    async def stage_joined(
        self, session: AsyncSession, membership: Membership
    ) -> tuple[Member, list[uuid.UUID]]:
        """The new member's view, and their ``member.joined`` event staged in ``session``."""
        member = await self._member(session, membership)
        data = GroupMember(**msgspec.structs.asdict(member), group_id=membership.group_id)
        key = f"{membership.user_id}/{membership.joined_at.isoformat()}"
        staged = await self._events.stage(
            session, [(membership.group_id, key, data)], "member.joined"
        )
        return member, staged

    async def welcome(self, group_id: uuid.UUID, member: Member, staged: list[uuid.UUID]) -> None:
        """After a join commits: release its event and tell the members."""
        await self._events.release(staged)
        await self._announce(group_id, member.user_id, "joined", Role.MEMBER)

    async def remove(self, actor_id: uuid.UUID, group_id: uuid.UUID, target_id: uuid.UUID) -> None:
        """Leave (``actor_id == target_id``) or kick.

        Raises:
            Conflict: the owner tries to leave without handing over.
            Forbidden: the actor's role may not kick the target.
            NotFound: the target is not a member.
        """
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, actor_id, Action.LEAVE, lock=True)
            target = await repo.get_membership(session, group_id, target_id)
            if target is None:
                raise NotFound("That user is not a member")
            target_role = Role(target.role)
            self._check_removal(loaded.role, target_role, actor_id == target_id)
            await repo.remove_member(session, loaded.group, target_id)
        action = "left" if actor_id == target_id else "kicked"
        await self._after_removal(group_id, target_id, action)

    async def change_role(
        self, actor_id: uuid.UUID, group_id: uuid.UUID, target_id: uuid.UUID, role: Role
    ) -> Member:
        """Set a member's role (owner only); ``owner`` hands the group over.

        Raises:
            Conflict: the owner tries to demote themselves.
            NotFound: the target is not a member.
        """
        async with self._db.session() as session, session.begin():
            loaded = await authorize(session, group_id, actor_id, Action.CHANGE_ROLES, lock=True)
            target = await repo.get_membership(session, group_id, target_id)
            if target is None:
                raise NotFound("That user is not a member")
            if target_id == actor_id:
                raise Conflict("Hand ownership to another member instead of changing your own role")
            if role is Role.OWNER:
                owner = await repo.get_membership(session, group_id, actor_id)
                if owner is not None:
                    owner.role = Role.ADMIN.value
                loaded.group.owner_id = target_id
            target.role = role.value
            member = await self._member(session, target)
        if role is Role.OWNER:  # the old owner is an admin now: members hear of it too
            await self._announce(group_id, actor_id, "role_changed", Role.ADMIN)
        await self._announce(group_id, target_id, "role_changed", role)
        return member

    async def notify_members(self, group_id: uuid.UUID, frame: ServerFrame) -> None:
        """Send a user-directed frame to every member's sockets."""
        async with self._db.session() as session:
            users = await repo.member_ids(session, group_id)
        await self._notifier.to_users(users, frame)

    @staticmethod
    def _check_removal(actor: Role | None, target: Role, leaving: bool) -> None:
        if leaving and target is Role.OWNER:
            raise Conflict("The owner cannot leave; hand ownership to another member first")
        if not leaving and not policy.can_kick(actor, target):
            raise Forbidden("Your role may not remove this member")

    async def _after_removal(self, group_id: uuid.UUID, user_id: uuid.UUID, action: str) -> None:
        self._access.forget(group_id, user_id)
        await self._notifier.membership_changed(group_id, user_id)
        frame = member_notice(group_id, user_id, action, None)
        await self.notify_members(group_id, frame)
        await self._notifier.to_user(user_id, frame)

    async def _announce(
        self, group_id: uuid.UUID, user_id: uuid.UUID, action: str, role: Role
    ) -> None:
        self._access.forget(group_id, user_id)
        await self._notifier.roster_changed(group_id)
        await self.notify_members(group_id, member_notice(group_id, user_id, action, role))

    @staticmethod
    async def _member(session: AsyncSession, membership: Membership) -> Member:
        row = (
            await session.execute(
                select(User.username, User.display_name).where(User.id == membership.user_id)
            )
        ).one()
        return member_view(membership, row[0], row[1])
