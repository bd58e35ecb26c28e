"""The role matrix: every action for every role in public and private groups, written out."""

from __future__ import annotations

import pytest

from server.errors import Forbidden, NotFound
from server.services.policy import Action, can, can_delete_message, can_kick, require, visible
from server.store.models import Role, Visibility

# One row per action. Columns: owner, admin, member, outsider of a public group, outsider of
# a private group. Written by hand from CONTRACT.md section 3 ("Study groups"), not from the
# code, so a change to the code's matrix has to be made here too, on purpose.
MATRIX = """
view_group          yes yes yes yes no
view_members        yes yes yes yes no
read_messages       yes yes yes no  no
post_message        yes yes yes no  no
edit_own_message    yes yes yes no  no
delete_own_message  yes yes yes no  no
delete_any_message  yes yes no  no  no
read_assignments    yes yes yes no  no
manage_assignments  yes yes no  no  no
invite              yes yes no  no  no
kick                yes yes no  no  no
manage_webhooks     yes yes no  no  no
update_group        yes yes no  no  no
change_roles        yes no  no  no  no
delete_group        yes no  no  no  no
leave               yes yes yes no  no
"""
ROLES: tuple[Role | None, ...] = (Role.OWNER, Role.ADMIN, Role.MEMBER, None)


def _expected() -> dict[tuple[Action, Role | None, Visibility], bool]:
    table: dict[tuple[Action, Role | None, Visibility], bool] = {}
    for line in MATRIX.strip().splitlines():
        name, owner, admin, member, public_outsider, private_outsider = line.split()
        action = Action(name)
        for role, cell in ((Role.OWNER, owner), (Role.ADMIN, admin), (Role.MEMBER, member)):
            for visibility in Visibility:
                table[action, role, visibility] = cell == "yes"
        table[action, None, Visibility.PUBLIC] = public_outsider == "yes"
        table[action, None, Visibility.PRIVATE] = private_outsider == "yes"
    return table


EXPECTED = _expected()
CASES = [
    pytest.param(action, role, visibility, id=f"{action.value}-{role or 'outsider'}-{visibility}")
    for action in Action
    for role in ROLES
    for visibility in Visibility
]


def test_matrix_covers_every_action() -> None:
    """The hand-written table names each Action exactly once."""
    names = [line.split()[0] for line in MATRIX.strip().splitlines()]
    assert sorted(names) == sorted(action.value for action in Action)
    assert len(EXPECTED) == len(Action) * len(ROLES) * len(Visibility)


@pytest.mark.parametrize(("action", "role", "visibility"), CASES)
def test_can_matches_the_matrix(action: Action, role: Role | None, visibility: Visibility) -> None:
    """can() answers exactly what the contract's role table says for this cell."""
    assert can(role, action, visibility) is EXPECTED[action, role, visibility]


def test_can_defaults_to_a_private_group() -> None:
    """Without a visibility, an outsider may not even view the group."""
    assert can(None, Action.VIEW_GROUP) is False
    assert can(Role.MEMBER, Action.VIEW_GROUP) is True


@pytest.mark.parametrize(
    ("role", "visibility", "expected"),
    [
        (Role.OWNER, Visibility.PRIVATE, True),
        (Role.ADMIN, Visibility.PRIVATE, True),
        (Role.MEMBER, Visibility.PRIVATE, True),
        (None, Visibility.PRIVATE, False),
        (Role.MEMBER, Visibility.PUBLIC, True),
        (None, Visibility.PUBLIC, True),
    ],
)
def test_visible_hides_only_private_groups_from_outsiders(
    role: Role | None, visibility: Visibility, expected: bool
) -> None:
    """A private group does not exist for outsiders; everything else is visible."""
    assert visible(role, visibility) is expected


@pytest.mark.parametrize("action", list(Action))
def test_require_raises_not_found_for_outsiders_of_private_groups(action: Action) -> None:
    """Any action on a private group by an outsider is 404, never 403 (no probing)."""
    with pytest.raises(NotFound):
        require(None, action, Visibility.PRIVATE)


@pytest.mark.parametrize(
    "action", [a for a in Action if a not in (Action.VIEW_GROUP, Action.VIEW_MEMBERS)]
)
def test_require_raises_forbidden_for_outsiders_of_public_groups(action: Action) -> None:
    """An outsider sees a public group, so anything beyond viewing it is 403."""
    with pytest.raises(Forbidden):
        require(None, action, Visibility.PUBLIC)


@pytest.mark.parametrize("action", [Action.VIEW_GROUP, Action.VIEW_MEMBERS])
def test_require_lets_outsiders_view_public_groups(action: Action) -> None:
    """Viewing a public group and its members needs no membership."""
    assert require(None, action, Visibility.PUBLIC) is None


@pytest.mark.parametrize(
    ("role", "action"),
    [
        (Role.MEMBER, Action.INVITE),
        (Role.MEMBER, Action.UPDATE_GROUP),
        (Role.ADMIN, Action.CHANGE_ROLES),
        (Role.ADMIN, Action.DELETE_GROUP),
    ],
)
@pytest.mark.parametrize("visibility", list(Visibility))
def test_require_raises_forbidden_for_members_beyond_their_role(
    role: Role, action: Action, visibility: Visibility
) -> None:
    """A member knows the group exists, so a disallowed action is 403, in any visibility."""
    with pytest.raises(Forbidden) as caught:
        require(role, action, visibility)
    assert action.value.replace("_", " ") in caught.value.message


@pytest.mark.parametrize("visibility", list(Visibility))
def test_require_passes_allowed_actions(visibility: Visibility) -> None:
    """The owner may delete the group; a member may post."""
    assert require(Role.OWNER, Action.DELETE_GROUP, visibility) is None
    assert require(Role.MEMBER, Action.POST_MESSAGE, visibility) is None


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [
        (Role.OWNER, Role.OWNER, False),
        (Role.OWNER, Role.ADMIN, True),
        (Role.OWNER, Role.MEMBER, True),
        (Role.ADMIN, Role.OWNER, False),
        (Role.ADMIN, Role.ADMIN, False),
        (Role.ADMIN, Role.MEMBER, True),
        (Role.MEMBER, Role.OWNER, False),
        (Role.MEMBER, Role.ADMIN, False),
        (Role.MEMBER, Role.MEMBER, False),
    ],
)
def test_can_kick(actor: Role, target: Role, expected: bool) -> None:
    """Owners kick admins and members; admins kick only members; members kick nobody."""
    assert can_kick(actor, target) is expected


@pytest.mark.parametrize("target", list(Role))
def test_outsiders_kick_nobody(target: Role) -> None:
    """A non-member cannot kick anyone."""
    assert can_kick(None, target) is False


@pytest.mark.parametrize(
    ("role", "is_author", "expected"),
    [
        (Role.OWNER, True, True),
        (Role.OWNER, False, True),
        (Role.ADMIN, True, True),
        (Role.ADMIN, False, True),
        (Role.MEMBER, True, True),
        (Role.MEMBER, False, False),
        (None, True, False),
        (None, False, False),
    ],
)
def test_can_delete_message(role: Role | None, is_author: bool, expected: bool) -> None:
    """Authors delete their own; owner and admins delete any; outsiders none."""
    assert can_delete_message(role, is_author) is expected
