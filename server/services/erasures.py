"""An erased account's copies outside the database: reached after the commit, until done.

:meth:`UserService.delete_account <server.services.users.UserService.delete_account>`
deletes the account in one PostgreSQL transaction that also stages a ``pending_erasures``
row. After the commit, :meth:`ErasureFollowUp.finish` reaches what lives elsewhere: the
profile cache, the user's sockets, the message log's copies and every Redis key naming the
user (:class:`Copies`), and the nodes' access caches. Each step is idempotent, so a row is
deleted only once all of them succeeded; if Redis was away (or a Redis Cluster primary
failing over), the row stays and :meth:`ErasureFollowUp.sweep` (the ``accounts.
finish_erasures`` job, every scheduler tick) tries again until it succeeds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from server.cache import Cache
from server.observability.metrics import ERASURE_FOLLOW_UPS
from server.services.clock import Clock
from server.services.notify import Notifier
from server.services.views import profile_key
from server.store import accounts
from server.store.db import Database

log = logging.getLogger(__name__)
STAGED_GRACE_S = 60
"""A staged erasure younger than this is left to the request that staged it."""
SWEEP_BATCH = 100
"""Erasures one sweep retries (the next tick takes the rest)."""


class Copies(Protocol):
    """Copies of an account's data outside the database (the message log, Redis keys)."""

    async def erase(
        self, user_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> None:
        """Erase them all; the user's messages (in ``group_ids`` and beyond) become tombstones."""
        ...


class ErasureFollowUp:
    """Reaches an erased account's copies outside the database, and retries until it has."""

    def __init__(
        self, db: Database, cache: Cache, notifier: Notifier, copies: Copies, clock: Clock
    ) -> None:
        self._db = db
        self._cache = cache
        self._notifier = notifier
        self._copies = copies
        self._clock = clock

    async def finish(
        self, user_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> bool:
        """Reach every copy, then forget the staged erasure; False (logged) to retry later."""
        groups = list(dict.fromkeys(group_ids))
        try:
            await self._cache.delete(profile_key(user_id))
            await self._notifier.disconnect_user(user_id, "account deleted")
            await self._copies.erase(user_id, groups, deleted_at)
            for group_id in groups:  # access caches, nodes' windows of recent frames
                await self._notifier.membership_changed(group_id, user_id)
            async with self._db.session() as session, session.begin():
                await accounts.erasure_done(session, user_id)
        except Exception as exc:  # Redis (or the database) away: the row stays for the sweep
            ERASURE_FOLLOW_UPS.labels(result="retry").inc()
            log.warning(
                "an erased account's copies outside the database wait for the sweep",
                extra={"account": str(user_id), "error": repr(exc)},
            )
            return False
        ERASURE_FOLLOW_UPS.labels(result="done").inc()
        return True

    async def sweep(self) -> int:
        """Try again the erasures staged over a minute ago and not done; how many are now."""
        staged_before = self._clock.now() - timedelta(seconds=STAGED_GRACE_S)
        async with self._db.session() as session:
            rows = await accounts.pending_erasures(session, staged_before, SWEEP_BATCH)
        done = 0
        for row in rows:
            groups = [uuid.UUID(group) for group in row.group_ids]
            done += await self.finish(row.user_id, groups, row.deleted_at)
        return done
