"""The message log on Redis or Redis Cluster: one Lua script per append (ADR 0008).

Keys (under ``REDIS_PREFIX`` and the group's partition tag, :mod:`server.bus.partitions`):
``seq:<group>`` the counter and ``ceil:<group>`` the ceiling reserved for it in the database
(:mod:`server.realtime.floors`), ``idem:<group>:<author>:<id>`` the first ack of a
``client_msg_id`` (24 h), ``rec:<group>`` the recovery stream (entry id ``<seq>-0``, trimmed to
about the window size, expiring a day after the last message), ``persist`` the partition's
persistence stream read by the persisters' consumer group. The author's GCRA state is
``rl:msg:<user>``: inside the script on one Redis; on a cluster (where it lives in the user's
slot, not the group's) checked by a call of its own first. The script publishes the bus
envelope itself (``SPUBLISH`` on a cluster), so publish order is seq order on every node.

Redis must run with ``appendonly yes`` and ``appendfsync always`` for an ack to survive a
Redis crash; with ``REDIS_MIN_REPLICAS_ACK=N`` an ack also waits for N replicas (``WAIT`` on
the connection that ran the script), so it survives a failover (ADR 0023).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import IntEnum
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import ScriptTextT

from server.aio import cancel_and_wait
from server.bus.partitions import Partitions
from server.errors import RateLimited, ServiceUnavailable
from server.lease import RedisLease
from server.realtime.envelope import group_channel
from server.realtime.floors import RESERVE_AHEAD_AT, Floors, report_loss
from server.realtime.log import (
    IDEMPOTENCY_TTL_S,
    Accepted,
    NewMessage,
    PersistEntry,
    Recent,
    parse_ack,
    utc_from_ms,
)
from server.realtime.redis_erasure import RedisErasure
from server.redis_client import LIBRARY_RACES, RedisClient, release_orphan
from server.redis_pipelining import PipelinedScript
from server.security.ratelimit import GCRA_STORE, Rate, RateLimiter, gcra_lua

log = logging.getLogger(__name__)
GROUP = "persisters"
APPEND_DEADLINE_S = 3.0
"""How long an append keeps retrying a cluster in flux before answering SERVICE_UNAVAILABLE."""
TRANSIENT = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.AskError,
    redis_errors.SlotNotCoveredError,
    *LIBRARY_RACES,
)
"""Failures of a moment (a failover, a slot migration): the idempotent append is retried."""


class Unreplicated(Exception):
    """Entries read for persistence are not on enough replicas yet."""


class Appended(IntEnum):
    """What the append script answers first."""

    NEW = 0
    """Appended: ``{NEW, ack}``."""
    REPEAT = 1
    """A repeated ``client_msg_id``: ``{REPEAT, first ack}``; nothing appended."""
    UNSEEDED = 2
    """The group has no counter in Redis (never had, or lost it): reserve, then again."""
    RATE_LIMITED = 3
    """Over the author's message rate: ``{RATE_LIMITED, retry_after_s}``."""
    EXHAUSTED = 4
    """The counter reached its reserved ceiling: ``{EXHAUSTED, counter}``; reserve, again."""
    STALE = 5
    """The counter is behind the recovery window (Redis lost writes): ``{STALE, counter}``;
    numbering jumps above the database, then again."""


_APPEND = (
    """
-- Append one message to a group's log, atomically: rate-limit the author, answer a repeated
-- client_msg_id with its first ack, assign the next seq, keep the frame in the recovery
-- window, queue the message for the persisters, remember the ack, publish the envelope.
-- One script, so Redis's single thread publishes every group's messages in seq order.
-- The seq never passes the ceiling reserved in the database (realtime/floors.py).
-- KEYS (one hash slot: the group's partition): seq counter, idempotency record, recovery
-- stream, persist stream, author's bucket, the counter's reserved ceiling.
-- ARGV: see RedisMessageLog._args (frame prefix/suffix around the seq, channel, TTLs,
-- window size, message fields, rate: limit 0 when the caller checked it; the publish
-- command, or '' when publishing waits for replicas: then the envelope comes back third).
-- Returns {Appended, value[, envelope]}; NEW: {NEW, ack, envelope or '', seqs left below the
-- ceiling}.
local seq_key, idem_key, recovery_key, persist_key, bucket, ceiling_key = unpack(KEYS)
local frame_prefix, frame_suffix, channel = ARGV[1], ARGV[2], ARGV[3]
local idem_ttl_s, window, window_s = ARGV[4], ARGV[5], ARGV[6]
local message_id, group_id, author_id = ARGV[7], ARGV[8], ARGV[9]
local body, client_msg_id, created_ms = ARGV[10], ARGV[11], ARGV[12]
local period_ms, limit, created_iso = ARGV[13], ARGV[14], ARGV[15]
local publish = ARGV[16]
"""
    + "".join(f"local {outcome.name} = {outcome.value}\n" for outcome in Appended)
    + """
local prior = redis.call('GET', idem_key)
if prior then
  -- Written again (same value, same expiry) so that a WAIT after this script covers the
  -- first append too: replication is one ordered stream.
  redis.call('SET', idem_key, prior, 'KEEPTTL')
  if publish ~= '' then return {REPEAT, prior} end
  -- Publishing waits for the replicas: hand the first append's envelope back, to publish again.
  local first = string.match(prior, '^(%d+)|')
  local found = redis.call('XRANGE', recovery_key, first .. '-0', first .. '-0')
  if #found == 0 then return {REPEAT, prior, ''} end
  local fields = found[1][2]
  return {REPEAT, prior, '0 ' .. first .. ' - ' .. fields[4] .. '\\n' .. fields[2]}
end
local function rate_step()
"""
    + gcra_lua("bucket", "period_ms", "limit")
    + """
  return allowed, new_tat, now, period
end
local rated = limit ~= '0'
local allowed, new_tat, now, period = true, 0, 0, 0
if rated then allowed, new_tat, now, period = rate_step() end
if not allowed then
  return {RATE_LIMITED, tostring(math.ceil((new_tat - period - now) / 1000))}
end
local counter = redis.call('GET', seq_key)
if not counter then return {UNSEEDED, ''} end
local ceiling = tonumber(redis.call('GET', ceiling_key) or '0')
if tonumber(counter) >= ceiling then return {EXHAUSTED, counter} end
local seq = tonumber(counter) + 1
local frame = frame_prefix .. seq .. frame_suffix
-- First write: a counter behind the recovery window's top (Redis lost writes) is refused
-- here, before anything changed.
local added = redis.pcall('XADD', recovery_key, 'MAXLEN', '~', window, seq .. '-0',
  'f', frame, 't', created_ms)
if type(added) == 'table' and added.err then return {STALE, counter} end
redis.call('SET', seq_key, seq)
if rated then
"""
    + GCRA_STORE.format(key="bucket")
    + """
end
redis.call('EXPIRE', recovery_key, window_s)
redis.call('XADD', persist_key, '*', 'g', group_id, 's', seq, 'i', message_id, 'a', author_id,
  'b', body, 'c', client_msg_id, 't', created_ms)
local ack = seq .. '|' .. message_id .. '|' .. created_iso
redis.call('SET', idem_key, ack, 'EX', idem_ttl_s)
local envelope = '0 ' .. seq .. ' - ' .. created_ms .. '\\n' .. frame
if publish == '' then return {NEW, ack, envelope, ceiling - seq} end
redis.call(publish, channel, envelope)
return {NEW, ack, '', ceiling - seq}
"""
)


_ADOPT = """
-- Adopt a block reserved in the database, atomically: raise the ceiling, and start the
-- counter (and the replicated seq) at the floor if it has none (a new group, or a lost log)
-- or, when the reservation says the log lost writes, if it is behind the floor.
-- KEYS: seq counter, ceiling, replicated seq. ARGV: floor, ceiling, jump (1: may move up),
-- ahead (1: a block reserved ahead of need, for a live counter only: a counter that is gone
-- is left to the reservation that reports the loss).
-- Returns 1 when it set the counter (the caller reports a loss), else 0.
local seq_key, ceiling_key, acked_key = KEYS[1], KEYS[2], KEYS[3]
local floor, ceiling, jump = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local counter = redis.call('GET', seq_key)
if ARGV[4] == '1' and not counter then return 0 end
local moved = 0
if not counter or (jump and tonumber(counter) < floor) then
  redis.call('SET', seq_key, floor)
  redis.call('SET', acked_key, floor)
  moved = 1
end
if tonumber(redis.call('GET', ceiling_key) or '0') < ceiling then
  redis.call('SET', ceiling_key, ceiling)
end
return moved
"""


_REVISE = """
-- Replace one message's frame in a group's recovery window (an edit, a deletion). A stream
-- entry cannot change in place: the window is rebuilt under the same ids and expiry, in one
-- script, so no append or replay sees it half done. KEYS: the recovery stream. ARGV: the
-- entry id (seq-0), the new frame. Returns 1 if the entry was there, else 0.
local stream, id, frame = KEYS[1], ARGV[1], ARGV[2]
if #redis.call('XRANGE', stream, id, id) == 0 then return 0 end
local entries = redis.call('XRANGE', stream, '-', '+')
local ttl = redis.call('PTTL', stream)
redis.call('DEL', stream)
for _, entry in ipairs(entries) do
  local fields = entry[2]
  if entry[1] == id then fields[2] = frame end
  redis.call('XADD', stream, entry[1], unpack(fields))
end
if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
return 1
"""


_PUBLISH_REPLICATED = """
-- A message reached its replicas: raise the group's replicated seq to it, then publish it.
-- Readers (last_seq, replays) stop at the replicated seq, so nothing a failover could lose
-- is ever shown. KEYS: the replicated seq. ARGV: channel, seq, envelope ('' for none),
-- publish command.
local acked_key = KEYS[1]
local channel, seq, envelope, publish = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if tonumber(redis.call('GET', acked_key) or '0') < seq then redis.call('SET', acked_key, seq) end
if envelope ~= '' then redis.call(publish, channel, envelope) end
return 1
"""

_ACKNOWLEDGE = """
-- Persisted entries of a partition's stream: acknowledge them and delete them, atomically.
-- A script, not a MULTI: redis-py's cluster transactions queue each command through a thread
-- with an event loop of its own, which deadlocks once the client must reload its slot map
-- (a failover). KEYS: the stream. ARGV: the consumer group, then the entry ids (at most a
-- batch, far below Lua's unpack limit). Returns how many were deleted.
local stream, group = KEYS[1], ARGV[1]
local ids = {unpack(ARGV, 2)}
redis.call('XACK', stream, group, unpack(ids))
return redis.call('XDEL', stream, unpack(ids))
"""


RESERVE_LOCK_S = 5.0
"""A reservation holds its group's lock at most this long (a node dying keeps it no longer)."""
RESERVE_RETRIES = 200
"""Appends finding another reservation under way retry this often, 10 ms apart (2 s)."""


class RedisMessageLog:
    """Messages made durable in Redis, persisted to PostgreSQL by the persisters."""

    def __init__(
        self,
        redis: RedisClient,
        partitions: Partitions,
        floors: Floors,
        limiter: RateLimiter,
        *,
        window: int,
        window_s: int,
        min_replicas: int = 0,
        ack_timeout_ms: int = 500,
    ) -> None:
        self._redis = redis
        self._partitions = partitions
        self._floors = floors
        self._limiter = limiter
        self._window = window
        self._window_s = window_s
        self._min_replicas = min_replicas
        self._ack_timeout_ms = ack_timeout_ms
        self._append = PipelinedScript(redis, _APPEND)
        self._adopt = redis.register_script(_ADOPT)
        self._publish_replicated = redis.register_script(_PUBLISH_REPLICATED)
        self._revise = redis.register_script(_REVISE)
        self._acknowledge = redis.register_script(_ACKNOWLEDGE)
        self._groups_ready: set[int] = set()
        self._ahead: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._erasure = RedisErasure(redis, partitions, GROUP, self._rewrite)

    @property
    def partitions(self) -> int:
        """How many persistence streams there are (one per partition)."""
        return self._partitions.count

    async def append(self, message: NewMessage, rate: Rate) -> Accepted:
        """Run the append script; reserve seqs in the database when the counter needs them.

        Raises:
            RateLimited: the author is over the message rate.
            ServiceUnavailable: the cluster kept failing until the deadline, or the message
                did not reach ``REDIS_MIN_REPLICAS_ACK`` replicas in time (never acked).
        """
        keys = self._keys(message)
        if self._partitions.sharded:  # the author's bucket lives in another slot
            decision = await self._limiter.hit(f"msg:{message.author_id}", rate)
            if not decision.allowed:
                return await self._limited_unless_repeat(keys[1], decision.retry_after)
        args = self._args(message, rate)
        deadline = time.monotonic() + APPEND_DEADLINE_S
        for _ in range(RESERVE_RETRIES):
            reply = await self._attempt(keys, args, deadline)
            text = _text(reply[1])
            outcome = Appended(reply[0])
            if outcome in (Appended.NEW, Appended.REPEAT):
                if outcome is Appended.NEW and int(reply[3]) <= RESERVE_AHEAD_AT:
                    self._reserve_ahead(message.group_id)
                accepted = parse_ack(text)
                if self._min_replicas:
                    await self._release(message.group_id, accepted.seq, reply[2], deadline)
                repeat = outcome is Appended.REPEAT
                return Accepted(accepted.seq, accepted.message_id, accepted.created_at, repeat)
            if outcome is Appended.RATE_LIMITED:
                raise RateLimited(max(1, int(text)), "Slow down: too many messages")
            counter = None if outcome is Appended.UNSEEDED else int(text)
            await self._reserved(message.group_id, counter, outcome is Appended.STALE)
        raise RuntimeError("the group's seqs could not be reserved")

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The counter (the replicated seq, when acks wait for replicas).

        A group with no counter gets one from a reservation first.
        """
        keys = [self._key("seq", group_id), self._key("acked", group_id)]
        for _ in range(RESERVE_RETRIES):
            counter, replicated = await self._redis.mget(keys)
            if counter is not None:
                shown = replicated if self._min_replicas and replicated is not None else counter
                return int(shown)
            await self._reserved(group_id, None)
        raise RuntimeError("the group's seqs could not be reserved")

    async def recent(self, group_id: uuid.UUID, after_seq: int, limit: int) -> list[Recent]:
        """Recovery-window frames after ``after_seq``, within the time window."""
        horizon = (time.time() - self._window_s) * 1000
        out: list[Recent] = []
        start = after_seq
        while len(out) < limit:  # entries past the time window are skipped, not counted
            entries: Any = await self._redis.xrange(
                self._key("rec", group_id), min=f"({start}-0", max="+", count=limit
            )
            for entry_id, fields in entries:
                start = int(entry_id.split(b"-")[0])
                created = int(fields[b"t"])
                if created >= horizon and len(out) < limit:
                    out.append(Recent(start, fields[b"f"], created))
            if len(entries) < limit:
                break
        return out

    async def pending(
        self, partition: int, consumer: str, count: int, block_s: float, *, own: bool = True
    ) -> list[PersistEntry]:
        """Own unacknowledged entries of a partition (unless ``own`` is False), then new ones.

        Raises:
            ResponseError: ``NOGROUP`` when Redis lost the stream (it is recreated next time).
        """
        await self._ensure_group(partition)
        try:
            if own and (entries := await self._read(partition, consumer, "0", count, None)):
                return entries
            return await self._read(partition, consumer, ">", count, max(1, int(block_s * 1000)))
        except redis_errors.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._groups_ready.discard(partition)
            raise

    async def adopt(self, partition: int, consumer: str) -> int:
        """Take over every entry another consumer of the partition left unacknowledged.

        Only the holder of a partition's lease reads it, so whatever is pending elsewhere
        belonged to an earlier holder (dead, or done with it): a batch written twice is
        harmless (``ON CONFLICT DO NOTHING``). Returns how many entries were taken.
        """
        await self._ensure_group(partition)
        stream, start, taken = self._stream(partition), "0-0", 0
        while True:
            claimed: Any = await self._redis.xautoclaim(
                stream, GROUP, consumer, min_idle_time=0, start_id=start, count=500
            )
            taken += len(claimed[1])
            start = claimed[0].decode() if isinstance(claimed[0], bytes) else str(claimed[0])
            if start == "0-0":
                return taken

    async def acknowledge(self, partition: int, entry_ids: list[str]) -> None:
        """XACK and delete persisted entries of a partition (one script: atomic, one slot)."""
        if entry_ids:
            await self._acknowledge(keys=[self._stream(partition)], args=[GROUP, *entry_ids])

    async def close(self) -> None:
        """Stop reserving ahead; Redis keeps the counters for the next node."""
        await cancel_and_wait(list(self._ahead.values()))

    def _reserve_ahead(self, group_id: uuid.UUID) -> None:
        """Reserve the group's next block in the background (one at a time per group)."""
        if group_id not in self._ahead:
            task = asyncio.get_running_loop().create_task(self._extend(group_id))
            self._ahead[group_id] = task
            task.add_done_callback(lambda _: self._ahead.pop(group_id, None))

    async def _extend(self, group_id: uuid.UUID) -> None:
        """Raise the ceiling a block while the counter is still below it (under the lock)."""
        lock = RedisLease(self._redis, self._key("seqlock", group_id), RESERVE_LOCK_S)
        try:
            if not await lock.hold():
                return  # a reservation is under way
            try:
                keys = [self._key(kind, group_id) for kind in ("seq", "ceil", "acked")]
                counter, ceiling, _ = await self._redis.mget(keys)
                if counter is None or ceiling is None:
                    return
                if int(ceiling) - int(counter) > RESERVE_AHEAD_AT:
                    return  # another node reserved the next block already
                raised = await self._floors.extend(group_id, int(ceiling))
                if raised is not None:
                    await self._adopt(keys=keys, args=[int(ceiling), raised, 0, 1])
            finally:
                await lock.release()
        except Exception as exc:  # the append reserves inline when the block runs out
            log.warning("reserving seqs ahead failed", extra={"error": repr(exc)})

    async def erase_author(
        self, author_id: uuid.UUID, group_ids: Iterable[uuid.UUID], deleted_at: datetime
    ) -> int:
        """Tombstones in the windows and persistence streams (:mod:`.redis_erasure`)."""
        return await self._erasure.erase(author_id, group_ids, deleted_at)

    async def revise(self, group_id: uuid.UUID, seq: int, frame: bytes) -> bool:
        """Rebuild the group's recovery window with ``frame`` for ``seq`` (one script).

        With replica acks the rewrite waits for N replicas like an append: a failover to a
        replica that missed it would put the old text back into replays.

        Raises:
            ServiceUnavailable: fewer than N replicas took the rewrite in time.
        """
        keys: list[str] = [self._key("rec", group_id)]
        return bool(await self._rewrite(self._revise, keys, [f"{seq}-0", frame]))

    async def _rewrite(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run a script that rewrites a recovery window; with replica acks, once on N replicas.

        Raises:
            ServiceUnavailable: fewer than N replicas took the rewrite in time.
        """
        if not self._min_replicas:
            return await script(keys=keys, args=args)
        deadline = time.monotonic() + APPEND_DEADLINE_S
        result, replicas = await self._retrying(
            lambda: self._waited(str(script.sha), script.script, keys, args), deadline
        )
        if replicas < self._min_replicas:
            raise ServiceUnavailable("The change did not reach enough Redis replicas in time")
        return result

    async def lag(self) -> tuple[int, float]:
        """Entries in the persistence streams and the age of the oldest."""
        pending, oldest = 0, 0.0
        for partition in range(self._partitions.count):
            length, age = await self._stream_lag(self._stream(partition))
            pending, oldest = pending + length, max(oldest, age)
        return pending, oldest

    async def _stream_lag(self, stream: str) -> tuple[int, float]:
        length = await self._redis.xlen(stream)
        if not length:
            return 0, 0.0
        first: Any = await self._redis.xrange(stream, count=1)
        oldest_ms = int(first[0][0].split(b"-")[0]) if first else int(time.time() * 1000)
        return int(length), max(0.0, time.time() - oldest_ms / 1000)

    async def _attempt(self, keys: list[str], args: list[Any], deadline: float) -> Any:
        """Run the script (and WAIT), retrying failures of a moment until ``deadline``."""
        if self._min_replicas:
            return await self._retrying(lambda: self._replicated(keys, args), deadline)
        return await self._retrying(lambda: self._append(keys=keys, args=args), deadline)

    @staticmethod
    async def _retrying(call: Callable[[], Awaitable[Any]], deadline: float) -> Any:
        """``call()``, again after failures of a moment, until ``deadline``.

        Raises:
            ServiceUnavailable: still failing at the deadline.
        """
        backoff = 0.02
        while True:
            try:
                return await call()
            except TRANSIENT as exc:
                if time.monotonic() + backoff > deadline:
                    raise ServiceUnavailable("The message log is unavailable; retry") from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.25)

    async def _replicated(self, keys: list[str], args: list[Any]) -> Any:
        """The append and ``WAIT N`` pipelined on one connection (WAIT counts its writes).

        Raises:
            ServiceUnavailable: fewer than N replicas acknowledged in time.
        """
        result, replicas = await self._waited(self._append.sha, _APPEND, keys, args)
        if replicas < self._min_replicas:
            raise ServiceUnavailable(
                "The message did not reach enough Redis replicas in time; retry with the same "
                "client_msg_id"
            )
        return result

    async def _waited(
        self, sha: str, lua: ScriptTextT, keys: list[str], args: list[Any]
    ) -> tuple[Any, int]:
        """A script and ``WAIT N`` on one connection: its result, and how many replicas took it.

        Raises:
            TryAgainError: the script was missing (a promoted replica: now loaded), or the
                slot moved meanwhile.
        """
        pipe = self._pipeline()
        pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        try:
            result, replicas = await self._with_wait(pipe, keys[0])
        except redis_errors.NoScriptError:  # a promoted replica has no script cache
            await self._redis.script_load(lua)
            raise redis_errors.TryAgainError("script loaded") from None
        return result, int(replicas)

    def _pipeline(self) -> Any:
        """A pipeline: its commands for one node (one slot) share one connection."""
        return self._redis.pipeline(transaction=False)

    async def _with_wait(self, pipe: Any, key: str, *, role: bool = False) -> list[Any]:
        """Add ``WAIT N`` at ``key``'s primary and run the pipeline; WAIT's answer is last.

        With ``role``, the primary's ``ROLE`` (its connected replicas) comes before it.

        Raises:
            TryAgainError: the slot moved meanwhile, so WAIT ran on another connection.
        """
        cluster = self._redis if isinstance(self._redis, RedisCluster) else None
        owner = cluster.get_node_from_key(key) if cluster is not None else None
        where = {"target_nodes": owner} if owner is not None else {}
        if role:
            pipe.execute_command("ROLE", **where)
        pipe.execute_command("WAIT", self._min_replicas, self._ack_timeout_ms, **where)
        try:
            results: list[Any] = await pipe.execute()
        finally:
            if cluster is not None and owner is not None:
                await release_orphan(cluster, owner)
        if cluster is not None and cluster.get_node_from_key(key) != owner:
            raise redis_errors.TryAgainError("the slot moved: WAIT ran elsewhere")
        return results

    async def _release(
        self, group_id: uuid.UUID, seq: int, envelope: bytes, deadline: float
    ) -> None:
        """Once the replicas hold a message: raise the replicated seq, publish the envelope."""
        partitions = self._partitions
        channel = partitions.channel(partitions.of(group_id), group_channel(group_id))
        args: list[Any] = [channel, seq, envelope, self._publish_command]
        keys = [self._key("acked", group_id)]
        await self._retrying(lambda: self._publish_replicated(keys=keys, args=args), deadline)

    async def _limited_unless_repeat(self, idem_key: str, retry_after: int) -> Accepted:
        """Over the rate on a cluster: a repeat still gets its first ack, others are refused."""
        prior = await self._redis.get(idem_key)
        if prior is None:
            raise RateLimited(retry_after, "Slow down: too many messages")
        return parse_ack(prior.decode() if isinstance(prior, bytes) else str(prior))

    async def _read(
        self, partition: int, consumer: str, start: str, count: int, block_ms: int | None
    ) -> list[PersistEntry]:
        """Read a batch; when acks wait for replicas, only once the replicas hold it.

        Raises:
            Unreplicated: fewer than N replicas hold the batch yet (it stays pending).
        """
        stream = self._stream(partition)
        if not self._min_replicas:
            response: Any = await self._redis.xreadgroup(
                GROUP, consumer, {stream: start}, count=count, block=block_ms
            )
        else:
            pipe = self._pipeline()
            pipe.xreadgroup(GROUP, consumer, {stream: start}, count=count, block=block_ms)
            pipe.set(self._partitions.key(partition, "persist:mark"), consumer, px=60_000)
            response, _, role, replicas = await self._with_wait(pipe, stream, role=True)
            # A primary with fewer replicas than N (its own failed over) has nobody a failover
            # could promote over it: what it holds is as safe as it gets, so it is persisted.
            needed = min(self._min_replicas, len(role[2]))
            if response and int(replicas) < needed:
                raise Unreplicated("a persistence batch is not on enough replicas yet")
        entries: list[PersistEntry] = []
        for _stream, items in response or []:
            entries.extend(self._entry(entry_id, fields) for entry_id, fields in items if fields)
        return entries

    async def _ensure_group(self, partition: int) -> None:
        if partition in self._groups_ready:
            return
        try:
            await self._redis.xgroup_create(self._stream(partition), GROUP, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(partition)

    async def jump(self, group_id: uuid.UUID) -> None:
        """Resume the group's numbering above the database's ceiling.

        For when the database holds seqs this log handed out again: Redis lost writes (a
        failover to a replica that missed them, an old copy restored) and kept counting from
        an older value. The persister finds it out (:mod:`server.realtime.persister`).
        """
        for _ in range(RESERVE_RETRIES):
            counter = await self._redis.get(self._key("seq", group_id))
            if await self._reserved(group_id, None if counter is None else int(counter), True):
                return
        raise RuntimeError("the group's seqs could not be reserved")

    async def _reserved(
        self, group_id: uuid.UUID, counter: int | None, stale: bool = False
    ) -> bool:
        """Reserve the group's next block and adopt it, one node at a time; False if busy.

        Under the group's lock the counter is checked again: if another node already did
        what this one was about to do, nothing is reserved (unless the counter is known to
        be ``stale``). The node that adopts a jump over lost seqs reports the loss, once.
        """
        lock = RedisLease(self._redis, self._key("seqlock", group_id), RESERVE_LOCK_S)
        if not await lock.hold():
            await asyncio.sleep(0.01)  # another reservation is under way; the caller retries
            return False
        try:
            keys = [self._key(kind, group_id) for kind in ("seq", "ceil", "acked")]
            found, ceiling, _ = await self._redis.mget(keys)
            done = (found is not None) if counter is None else int(ceiling or 0) > counter
            if done and not stale:
                return True
            reservation = await self._floors.reserve(group_id, counter)
            args = [reservation.floor, reservation.ceiling, int(reservation.lost), 0]
            if await self._adopt(keys=keys, args=args) and reservation.lost:
                report_loss(group_id, reservation.floor)
            return True
        finally:
            await lock.release()

    def _key(self, kind: str, group_id: uuid.UUID) -> str:
        """A key of the group's, in the group's partition."""
        return self._partitions.owned(group_id, f"{kind}:{group_id}")

    def _stream(self, partition: int) -> str:
        return self._partitions.key(partition, "persist")

    def _keys(self, message: NewMessage) -> list[str]:
        group, author = message.group_id, message.author_id
        partition = self._partitions.of(group)
        return [
            self._key("seq", group),
            self._partitions.key(partition, f"idem:{group}:{author}:{message.client_msg_id}"),
            self._key("rec", group),
            self._stream(partition),
            self._partitions.key(partition, f"rl:msg:{author}"),  # unused on a cluster
            self._key("ceil", group),
        ]

    def _args(self, message: NewMessage, rate: Rate) -> list[Any]:
        prefix, suffix = message.frame_template()
        created_ms = int(message.created_at.timestamp() * 1000)
        partitions, group = self._partitions, message.group_id
        return [
            prefix,
            suffix,
            partitions.channel(partitions.of(group), group_channel(group)),
            IDEMPOTENCY_TTL_S,
            self._window,
            self._window_s,
            str(message.message_id),
            str(message.group_id),
            str(message.author_id),
            message.body,
            message.client_msg_id,
            created_ms,
            rate.period_s * 1000,
            0 if partitions.sharded else rate.limit,
            message.created_at.isoformat(),
            "" if self._min_replicas else self._publish_command,
        ]

    @property
    def _publish_command(self) -> str:
        return "SPUBLISH" if self._partitions.sharded else "PUBLISH"

    @staticmethod
    def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> PersistEntry:
        created, author, deleted = int(fields[b"t"]), fields[b"a"], fields.get(b"d")
        row = {
            "id": uuid.UUID(fields[b"i"].decode()),
            "group_id": uuid.UUID(fields[b"g"].decode()),
            "seq": int(fields[b"s"]),
            "author_id": uuid.UUID(author.decode()) if author else None,  # None: erased
            "body": fields[b"b"].decode(),
            "client_msg_id": fields[b"c"].decode(),
            "created_at": utc_from_ms(created),
            "deleted_at": utc_from_ms(int(deleted)) if deleted else None,
        }
        return PersistEntry(entry_id.decode(), row, created / 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
