"""The seed plan: who each seeded person is and which groups they share."""

from __future__ import annotations

from collections import Counter

import pytest

from server.admin import seed_plan
from server.admin.seed_plan import SeedPlan


def test_people_are_derived_from_their_index() -> None:
    """Email, username and id depend on the index alone, so Locust can log in as anyone."""
    assert seed_plan.email(7) == "user7@loadtest.invalid"
    assert seed_plan.username(7) == "loadtest_7"
    assert seed_plan.user_id(7) == seed_plan.user_id(7)
    assert seed_plan.user_id(7) != seed_plan.user_id(8)
    assert seed_plan.group_id(3) != seed_plan.group_id(4)
    assert seed_plan.subject(0) == seed_plan.subject(len(seed_plan.SUBJECTS))


def test_every_person_is_in_distinct_groups_and_groups_are_even() -> None:
    """200 people in 20 groups, 2 each: 20 members per group, nobody twice in one."""
    plan = SeedPlan(200, 20)
    sizes: Counter[int] = Counter()
    for person in range(plan.users):
        groups = plan.groups_of(person)
        assert len(groups) == len(set(groups)) == 2
        sizes.update(groups)
    assert set(sizes.values()) == {20}


def test_owners_are_members_of_their_groups() -> None:
    """Group j's owner is person j, whose first group is j."""
    plan = SeedPlan(50, 10, groups_per_user=3)
    for group in range(plan.groups):
        assert plan.groups_of(SeedPlan.owner_of(group))[0] == group


def test_one_group_plan_has_no_repeats() -> None:
    """With a single group every person is in it once, whatever groups_per_user says."""
    assert SeedPlan(5, 1, groups_per_user=3).groups_of(4) == [0]


def test_every_tenth_group_is_private() -> None:
    """Groups 9, 19, ... are private; the rest public."""
    assert [g for g in range(25) if SeedPlan.is_private(g)] == [9, 19]


@pytest.mark.parametrize(("users", "groups", "per_user"), [(5, 6, 2), (5, 0, 2), (5, 2, 0)])
def test_impossible_plans_are_refused(users: int, groups: int, per_user: int) -> None:
    """More groups than people (someone must own each), no groups, or no memberships."""
    with pytest.raises(ValueError, match="groups"):
        SeedPlan(users, groups, per_user)
