"""A busy group's hash slot migrates to another primary under traffic (issue 12).

The cluster is the test's own; the traffic is ``tests/fixtures/cluster_traffic.py``'s. The
slot holding the group's partition is marked MIGRATING/IMPORTING and its keys are moved a
few at a time with pauses, so sends, subscriptions and the persister meet a half-moved slot
(``ASK``, ``TRYAGAIN``), then the slot is handed over (``MOVED``; the old owner ends the
sharded subscriptions). No acked message is lost, duplicated or delivered out of order, and
the only errors are "unavailable, retry".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scripts.redis_cluster import LocalCluster, slot_of
from tests.fixtures.cluster_traffic import UNAVAILABLE, Traffic, check_exactly_once, run_traffic

pytestmark = pytest.mark.slow

BATCH = 5
PAUSE_S = 0.2
MAX_STEPS = 200


async def migrate_the_groups_slot(traffic: Traffic) -> None:
    """Move the group's slot to the next primary in small steps; acks carry on after."""
    cluster, slot = traffic.cluster, slot_of(traffic.group_key)
    source = cluster.owner_of_slot(slot)
    primaries = [port for port in cluster.ports[:3] if port != source]
    migration = await asyncio.to_thread(cluster.begin_migration, slot, primaries[0])
    for _ in range(MAX_STEPS):
        if not await asyncio.to_thread(migration.move, BATCH):
            break
        await asyncio.sleep(PAUSE_S)  # traffic meets the half-moved slot
    await asyncio.to_thread(migration.move_all, BATCH)  # what arrived during the last pause
    await asyncio.to_thread(migration.finish)
    assert cluster.owner_of_slot(slot) == primaries[0]
    await traffic.acks_resume(traffic.last_acked())


async def test_a_migrating_slot_loses_duplicates_and_reorders_nothing(
    own_redis_cluster: LocalCluster, pg_url: str, media_dir: Path
) -> None:
    """Every acked message reaches both watchers and history once, in seq order."""
    sent, seen, stored = await run_traffic(
        own_redis_cluster, pg_url, media_dir, migrate_the_groups_slot
    )
    print(f"acked {len(sent.acked)}, errors {len(sent.errors)}: {sorted(set(sent.errors))}")
    check_exactly_once(sent, seen, stored, UNAVAILABLE)
