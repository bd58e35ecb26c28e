"""The per-node access cache: whole groups at a time, bounded, and re-read after a change."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from server.errors import Forbidden, NotFound
from server.services.access import GroupAccess
from server.services.policy import Action
from tests.factories.groups import create_group, public_group
from tests.factories.users import account
from tests.fixtures.server import RunningServer


async def test_members_outsiders_and_missing_groups(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """A member may post; an outsider is refused (403 public, 404 private); no group is 404."""
    owner, member, outsider = await account(client), await account(client), await account(client)
    public = await public_group(client, owner, member)
    private = (await create_group(client, owner, visibility="private"))["id"]
    access = GroupAccess(node.db, lambda: 0.0, max_members=1)  # room for one member: evictions
    await access.require(uuid.UUID(public), uuid.UUID(member.id), Action.POST_MESSAGE)
    with pytest.raises(Forbidden):
        await access.require(uuid.UUID(public), uuid.UUID(outsider.id), Action.POST_MESSAGE)
    with pytest.raises(NotFound):
        await access.require(uuid.UUID(private), uuid.UUID(outsider.id), Action.READ_MESSAGES)
    with pytest.raises(NotFound):
        await access.require(uuid.uuid4(), uuid.UUID(owner.id), Action.READ_MESSAGES)
    access.forget(uuid.UUID(public), uuid.UUID(member.id))
    await access.may_post(uuid.UUID(public), uuid.UUID(owner.id))
    await access.may_read(uuid.UUID(private), uuid.UUID(owner.id))


async def test_a_change_announced_during_a_read_is_not_cached_over(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """A roster read while a change is announced answers once, and is read again next time."""
    owner, member = await account(client), await account(client)
    group = await public_group(client, owner, member)
    access = GroupAccess(node.db, lambda: 0.0)
    reading = asyncio.ensure_future(
        access.require(uuid.UUID(group), uuid.UUID(member.id), Action.POST_MESSAGE)
    )
    await asyncio.sleep(0)  # the read has started
    access.forget(uuid.UUID(group))  # a change is announced meanwhile
    await reading
    kicked = await client.delete(
        f"/api/v1/study-groups/{group}/members/{member.id}", headers=owner.headers
    )
    assert kicked.status_code == 204
    with pytest.raises(Forbidden):  # re-read, not the roster read before the change
        await access.require(uuid.UUID(group), uuid.UUID(member.id), Action.POST_MESSAGE)


async def test_rosters_read_at_once_are_all_kept(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """Reading one group's roster is no change: two read at once are both cached."""
    owner, member = await account(client), await account(client)
    groups = [uuid.UUID(await public_group(client, owner, member)) for _ in range(2)]
    access = GroupAccess(node.db, lambda: 0.0)
    user = uuid.UUID(member.id)
    await asyncio.gather(*(access.require(g, user, Action.POST_MESSAGE) for g in groups))
    for group in groups:  # changed behind this cache's back (it hears no announcement)
        kicked = await client.delete(
            f"/api/v1/study-groups/{group}/members/{member.id}", headers=owner.headers
        )
        assert kicked.status_code == 204
    for group in groups:  # both answered from the cache, as read before the kicks
        await access.require(group, user, Action.POST_MESSAGE)
