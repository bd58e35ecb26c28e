"""An account's erasure outside the database: the message log and every Redis key of the user.

The services see it as their ``Copies`` port (:mod:`server.services.erasures`); the container
hands them this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from server.realtime.log import MessageLog
from server.redis_client import RedisClient, glob_escape, unlink_matching


class RealtimeCopies:
    """The log's copies of the user's messages, then Redis keys naming the user.

    The keys are found by name under ``REDIS_PREFIX``: socket leases and presence sessions
    (:mod:`server.realtime.registry`), rate-limit buckets, cached profiles and read-your-writes
    marks. In process (no Redis) those live in the node's memory and go with the sockets
    (leases, presence) or expire within minutes (buckets, caches: the profile is dropped by
    the service itself).
    """

    def __init__(self, log: MessageLog, redis: RedisClient | None, prefix: str) -> None:
        self._log = log
        self._redis = redis
        self._prefix = prefix

    async def erase(
        self, user_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> None:
        """Tombstones for the user's messages in the log, then their keys unlinked."""
        await self._log.erase_author(user_id, group_ids, deleted_at)
        if self._redis is not None:
            await unlink_matching(self._redis, f"{glob_escape(self._prefix)}*{user_id}*")
