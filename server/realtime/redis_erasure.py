"""Erasing an author from the Redis message log: recovery windows, persistence streams, keys.

A stream entry cannot be changed in place, so each rewrite is one Lua script on keys of one
partition (one hash slot on a cluster): a recovery window is rebuilt with tombstones in place
of the author's frames, under the same entry ids and expiry; an entry of a persistence stream
is acknowledged, deleted and queued again as a tombstone row (same message id, group and seq;
no author, no body, a deletion time), so the persister still stores the seq. Appends that run
between two scripts are whole messages either way: the order of scripts never shows a half
erased window. With replica acks a window's rewrite waits for the replicas like an edit's
(the log's ``rewrite``): a failover must not bring the author's frames back into replays.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from redis.commands.core import AsyncScript

from server.bus.partitions import Partitions
from server.errors import ServiceUnavailable
from server.realtime.log import author_marker, tombstone
from server.redis_client import RedisClient, glob_escape, unlink_matching

log = logging.getLogger(__name__)
Rewrite = Callable[[AsyncScript, list[str], list[Any]], Awaitable[Any]]
"""Runs a script that rewrites a recovery window (script, keys, args), waiting for the
replicas when acks do.

Raises:
    ServiceUnavailable: fewer replicas than acks wait for took the rewrite in time.
"""

SCAN_BATCH = 500
"""Entries of a persistence stream looked at per script call (Redis serves others between)."""
NIL = uuid.UUID(int=0)

_WINDOW = """
-- Rebuild a group's recovery window with tombstones in place of one author's frames.
-- KEYS: the recovery stream. ARGV: the author's marker in a frame, then the tombstone frame
-- around its message id and seq (head, middle, tail). Returns how many frames it replaced.
local stream, marker = KEYS[1], ARGV[1]
local head, middle, tail = ARGV[2], ARGV[3], ARGV[4]
local entries = redis.call('XRANGE', stream, '-', '+')
local found = false
for _, entry in ipairs(entries) do
  if string.find(entry[2][2], marker, 1, true) then found = true break end
end
if not found then return 0 end
local ttl = redis.call('PTTL', stream)
redis.call('DEL', stream)
local erased = 0
for _, entry in ipairs(entries) do
  local id, fields = entry[1], entry[2]
  local frame = fields[2]
  if string.find(frame, marker, 1, true) then
    local message_id = string.match(frame, '"message_id":"([^"]+)"')
    frame = head .. message_id .. middle .. string.match(id, '^(%d+)-') .. tail
    erased = erased + 1
  end
  redis.call('XADD', stream, id, fields[1], frame, fields[3], fields[4])
end
if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
return erased
"""

_QUEUED = """
-- Turn one author's entries of a persistence stream into tombstone rows, a batch at a time.
-- KEYS: the stream. ARGV: author, first id to look at, batch size, deletion ms, consumer
-- group. Returns {entries looked at, last id looked at, groups of the rows replaced...}.
local stream = KEYS[1]
local author, start, count, deleted_ms, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', count)
local out = {#entries, ''}
for _, entry in ipairs(entries) do
  local id, fields = entry[1], entry[2]
  out[2] = id
  local row = {}
  for i = 1, #fields, 2 do row[fields[i]] = fields[i + 1] end
  if row['a'] == author then
    redis.pcall('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
    redis.call('XADD', stream, '*', 'g', row['g'], 's', row['s'], 'i', row['i'], 'a', '',
      'b', '', 'c', row['c'], 't', row['t'], 'd', deleted_ms)
    out[#out + 1] = row['g']
  end
end
return out
"""


class RedisErasure:
    """The Redis log's part of an account's erasure."""

    def __init__(
        self, redis: RedisClient, partitions: Partitions, consumers: str, rewrite: Rewrite
    ) -> None:
        self._redis = redis
        self._partitions = partitions
        self._consumers = consumers
        self._rewrite = rewrite
        self._window = redis.register_script(_WINDOW)
        self._queued = redis.register_script(_QUEUED)

    async def erase(
        self, author_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> int:
        """Tombstones for the author's queued rows and frames; their log keys deleted.

        The groups of rows still queued are added to ``group_ids``: a message not persisted
        yet may be in a group the author has left. Returns how many frames were replaced.
        """
        groups = set(group_ids)
        deleted_ms = int(deleted_at.timestamp() * 1000)
        for partition in range(self._partitions.count):
            groups |= await self._erase_queued(partition, author_id, deleted_ms)
        erased = 0
        for group_id in groups:
            erased += await self._erase_window(author_id, group_id)
        await self._forget_keys(author_id)
        return erased

    async def _erase_window(self, author_id: uuid.UUID, group_id: uuid.UUID) -> int:
        """Tombstones for the author's frames in one group's window; how many (confirmed).

        A rewrite fewer replicas took than acks wait for is logged and counted as none, and
        the erasure goes on: the window ages out within ``RECOVERY_WINDOW_S``.
        """
        window = self._partitions.owned(group_id, f"rec:{group_id}")
        try:
            return int(await self._rewrite(self._window, [window], self._args(author_id, group_id)))
        except ServiceUnavailable:
            log.warning(
                "an erased author's frames may come back after a Redis failover",
                extra={"group_id": str(group_id)},
            )
            return 0

    async def _erase_queued(
        self, partition: int, author_id: uuid.UUID, deleted_ms: int
    ) -> set[uuid.UUID]:
        """Tombstone rows for the author's entries of one persistence stream; their groups."""
        stream = self._partitions.key(partition, "persist")
        start, groups = "-", set[uuid.UUID]()
        while True:
            args: list[str | int] = [str(author_id), start, SCAN_BATCH, deleted_ms, self._consumers]
            reply: Any = await self._queued(keys=[stream], args=args)
            groups.update(uuid.UUID(_text(group)) for group in reply[2:])
            if int(reply[0]) < SCAN_BATCH:
                return groups
            start = "(" + _text(reply[1])

    @staticmethod
    def _args(author_id: uuid.UUID, group_id: uuid.UUID) -> list[bytes]:
        """The author's marker and the group's tombstone frame split around id and seq."""
        head, _, rest = tombstone(group_id, NIL, 0).partition(str(NIL).encode())
        middle, _, tail = rest.rpartition(b"0")
        return [author_marker(author_id), head, middle, tail]

    async def _forget_keys(self, author_id: uuid.UUID) -> None:
        """The author's idempotency records and message-rate buckets (every partition)."""
        prefix = glob_escape(self._partitions.prefix)
        await unlink_matching(self._redis, f"{prefix}*idem:*:{author_id}:*")
        buckets = {
            self._partitions.key(partition, f"rl:msg:{author_id}")
            for partition in range(self._partitions.count)
        }
        buckets.add(f"{self._partitions.prefix}rl:msg:{author_id}")  # the limiter's own
        for key in buckets:
            await self._redis.unlink(key)


def _text(value: bytes) -> str:
    return value.decode()
