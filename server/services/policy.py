"""Who may do what in a study group: every rule, in one place, with no I/O.

Roles are ``owner``, ``admin`` and ``member``; ``None`` is a non-member.
"""

from __future__ import annotations

from enum import StrEnum

from server.errors import Forbidden, NotFound
from server.store.models import Role, Visibility


class Action(StrEnum):
    """Things a user can try to do in a group."""

    VIEW_GROUP = "view_group"
    VIEW_MEMBERS = "view_members"
    READ_MESSAGES = "read_messages"
    POST_MESSAGE = "post_message"
    EDIT_OWN_MESSAGE = "edit_own_message"
    DELETE_OWN_MESSAGE = "delete_own_message"
    DELETE_ANY_MESSAGE = "delete_any_message"
    READ_ASSIGNMENTS = "read_assignments"
    MANAGE_ASSIGNMENTS = "manage_assignments"
    INVITE = "invite"
    KICK = "kick"
    MANAGE_WEBHOOKS = "manage_webhooks"
    UPDATE_GROUP = "update_group"
    CHANGE_ROLES = "change_roles"
    DELETE_GROUP = "delete_group"
    LEAVE = "leave"


_MEMBERS = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})
_MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
_OWNER = frozenset({Role.OWNER})

ALLOWED: dict[Action, frozenset[Role]] = {
    Action.VIEW_GROUP: _MEMBERS,
    Action.VIEW_MEMBERS: _MEMBERS,
    Action.READ_MESSAGES: _MEMBERS,
    Action.POST_MESSAGE: _MEMBERS,
    Action.EDIT_OWN_MESSAGE: _MEMBERS,
    Action.DELETE_OWN_MESSAGE: _MEMBERS,
    Action.DELETE_ANY_MESSAGE: _MANAGERS,
    Action.READ_ASSIGNMENTS: _MEMBERS,
    Action.MANAGE_ASSIGNMENTS: _MANAGERS,
    Action.INVITE: _MANAGERS,
    Action.KICK: _MANAGERS,
    Action.MANAGE_WEBHOOKS: _MANAGERS,
    Action.UPDATE_GROUP: _MANAGERS,
    Action.CHANGE_ROLES: _OWNER,
    Action.DELETE_GROUP: _OWNER,
    Action.LEAVE: _MEMBERS,
}
"""The role matrix. Non-members may do none of these."""

PUBLIC_TO_ANYONE = frozenset({Action.VIEW_GROUP, Action.VIEW_MEMBERS})
"""What anyone may do in a public group without joining."""


def can(role: Role | None, action: Action, visibility: Visibility = Visibility.PRIVATE) -> bool:
    """Whether a user with ``role`` may do ``action`` in a group of ``visibility``."""
    if role is None:
        return visibility is Visibility.PUBLIC and action in PUBLIC_TO_ANYONE
    return role in ALLOWED[action]


def visible(role: Role | None, visibility: Visibility) -> bool:
    """Whether the group exists as far as this user can tell."""
    return role is not None or visibility is Visibility.PUBLIC


def require(role: Role | None, action: Action, visibility: Visibility) -> None:
    """Raise unless allowed: 404 when the group is invisible to the user, else 403.

    Raises:
        NotFound: the user may not even know the group exists.
        Forbidden: the group is visible but the action is not theirs.
    """
    if not visible(role, visibility):
        raise NotFound("Study group not found")
    if not can(role, action, visibility):
        raise Forbidden(f"Your role does not allow: {action.value.replace('_', ' ')}")


def can_kick(actor: Role | None, target: Role) -> bool:
    """Owners kick anyone but themselves; admins kick only members."""
    if actor is Role.OWNER:
        return target is not Role.OWNER
    return actor is Role.ADMIN and target is Role.MEMBER


def can_delete_message(role: Role | None, is_author: bool) -> bool:
    """Authors delete their own messages; owners and admins delete any."""
    if is_author:
        return can(role, Action.DELETE_OWN_MESSAGE)
    return can(role, Action.DELETE_ANY_MESSAGE)
