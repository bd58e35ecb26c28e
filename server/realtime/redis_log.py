"""The message log on Redis: one Lua script per append (ADR 0008).

Keys (under ``REDIS_PREFIX``): ``seq:<group>`` the counter and ``ceil:<group>`` the ceiling
reserved for it in the database (:mod:`server.realtime.floors`), ``idem:<group>:<author>:<id>``
the first ack of a ``client_msg_id`` (24 h), ``rec:<group>`` the recovery stream (entry id
``<seq>-0``, trimmed to about the window size, expiring a day after the last message),
``persist`` the persistence stream read by the persisters' consumer group, ``rl:msg:<user>``
the author's GCRA state. The script publishes the bus envelope itself, so publish order is seq
order on every node. Redis must run with ``appendonly yes`` and ``appendfsync always`` for an
ack to survive a Redis crash.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from server.errors import RateLimited
from server.realtime.floors import Floors, report_loss
from server.realtime.log import (
    IDEMPOTENCY_TTL_S,
    Accepted,
    NewMessage,
    PersistEntry,
    Recent,
    parse_ack,
    utc_from_ms,
)
from server.security.ratelimit import GCRA_STORE, Rate, gcra_lua

GROUP = "persisters"


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


_APPEND = (
    """
-- Append one message to a group's log, atomically: rate-limit the author, answer a repeated
-- client_msg_id with its first ack, assign the next seq, keep the frame in the recovery
-- window, queue the message for the persisters, remember the ack, publish the envelope.
-- One script, so Redis's single thread publishes every group's messages in seq order.
-- The seq never passes the ceiling reserved in the database (realtime/floors.py).
-- KEYS: seq counter, idempotency record, recovery stream, persist stream, author's bucket,
-- the counter's reserved ceiling.
-- ARGV: see RedisMessageLog._args (frame prefix/suffix around the seq, channel, TTLs,
-- window size, message fields, rate). Returns {Appended, value}.
local seq_key, idem_key, recovery_key, persist_key, bucket, ceiling_key = unpack(KEYS)
local frame_prefix, frame_suffix, channel = ARGV[1], ARGV[2], ARGV[3]
local idem_ttl_s, window, window_s = ARGV[4], ARGV[5], ARGV[6]
local message_id, group_id, author_id = ARGV[7], ARGV[8], ARGV[9]
local body, client_msg_id, created_ms = ARGV[10], ARGV[11], ARGV[12]
local period_ms, limit, created_iso = ARGV[13], ARGV[14], ARGV[15]
"""
    + "".join(f"local {outcome.name} = {outcome.value}\n" for outcome in Appended)
    + """
local prior = redis.call('GET', idem_key)
if prior then return {REPEAT, prior} end
"""
    + gcra_lua("bucket", "period_ms", "limit")
    + """
if not allowed then
  return {RATE_LIMITED, tostring(math.ceil((new_tat - period - now) / 1000))}
end
local counter = redis.call('GET', seq_key)
if not counter then return {UNSEEDED, ''} end
if tonumber(counter) >= tonumber(redis.call('GET', ceiling_key) or '0') then
  return {EXHAUSTED, counter}
end
"""
    + GCRA_STORE.format(key="bucket")
    + """
local seq = redis.call('INCR', seq_key)
local frame = frame_prefix .. seq .. frame_suffix
redis.call('XADD', recovery_key, 'MAXLEN', '~', window, seq .. '-0', 'f', frame, 't', created_ms)
redis.call('EXPIRE', recovery_key, window_s)
redis.call('XADD', persist_key, '*', 'g', group_id, 's', seq, 'i', message_id, 'a', author_id,
  'b', body, 'c', client_msg_id, 't', created_ms)
local ack = seq .. '|' .. message_id .. '|' .. created_iso
redis.call('SET', idem_key, ack, 'EX', idem_ttl_s)
redis.call('PUBLISH', channel, '0 ' .. seq .. ' - ' .. created_ms .. '\\n' .. frame)
return {NEW, ack}
"""
)


_ADOPT = """
-- Adopt a block reserved in the database, atomically: raise the ceiling, and start the
-- counter at the floor if it has none (a new group, or a lost log) or, when the reservation
-- says the log lost writes, if it is behind the floor.
-- KEYS: seq counter, ceiling. ARGV: floor, ceiling, jump (1: the counter may move up).
-- Returns 1 when it set the counter (the caller reports a loss), else 0.
local seq_key, ceiling_key = KEYS[1], KEYS[2]
local floor, ceiling, jump = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local counter = redis.call('GET', seq_key)
local moved = 0
if not counter or (jump and tonumber(counter) < floor) then
  redis.call('SET', seq_key, floor)
  moved = 1
end
if tonumber(redis.call('GET', ceiling_key) or '0') < ceiling then
  redis.call('SET', ceiling_key, ceiling)
end
return moved
"""


_UNLOCK = """
-- Release a lock only if this caller still holds it.
-- KEYS: the lock. ARGV: the holder's token. Returns 1 if released.
local lock, token = KEYS[1], ARGV[1]
if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
return 0
"""
RESERVE_LOCK_MS = 5000
"""A reservation holds its group's lock at most this long (a node dying keeps it no longer)."""
RESERVE_RETRIES = 200
"""Appends finding another reservation under way retry this often, 10 ms apart (2 s)."""


class RedisMessageLog:
    """Messages made durable in Redis, persisted to PostgreSQL by the persisters."""

    def __init__(
        self, redis: Redis, prefix: str, floors: Floors, *, window: int, window_s: int
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._floors = floors
        self._window = window
        self._window_s = window_s
        self._append = redis.register_script(_APPEND)
        self._adopt = redis.register_script(_ADOPT)
        self._unlock = redis.register_script(_UNLOCK)
        self._stream = f"{prefix}persist"
        self._group_ready = False

    async def append(self, message: NewMessage, rate: Rate) -> Accepted:
        """Run the append script; reserve seqs in the database when the counter needs them."""
        for _ in range(RESERVE_RETRIES):
            code, value = await self._append(
                keys=self._keys(message), args=self._args(message, rate)
            )
            text = value.decode() if isinstance(value, bytes) else str(value)
            outcome = Appended(code)
            if outcome in (Appended.NEW, Appended.REPEAT):
                accepted = parse_ack(text)
                repeat = outcome is Appended.REPEAT
                return Accepted(accepted.seq, accepted.message_id, accepted.created_at, repeat)
            if outcome is Appended.RATE_LIMITED:
                raise RateLimited(max(1, int(text)), "Slow down: too many messages")
            counter = int(text) if outcome is Appended.EXHAUSTED else None
            await self._reserved(message.group_id, counter)
        raise RuntimeError("the group's seqs could not be reserved")

    async def last_seq(self, group_id: uuid.UUID) -> int:
        """The counter; a group with none gets one from a reservation first."""
        for _ in range(RESERVE_RETRIES):
            value = await self._redis.get(self._key("seq", group_id))
            if value is not None:
                return int(value)
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

    async def pending(self, consumer: str, count: int, block_s: float) -> list[PersistEntry]:
        """Own unacknowledged entries, then stale ones of dead consumers, then new ones.

        Raises:
            ResponseError: ``NOGROUP`` when Redis lost the stream (it is recreated next time).
        """
        await self._ensure_group()
        try:
            return await self._pending(consumer, count, block_s)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise

    async def _pending(self, consumer: str, count: int, block_s: float) -> list[PersistEntry]:
        own = await self._read(consumer, "0", count, None)
        if own:
            return own
        claimed: Any = await self._redis.xautoclaim(
            self._stream, GROUP, consumer, min_idle_time=5000, start_id="0-0", count=count
        )
        if claimed[1]:
            return [self._entry(entry_id, fields) for entry_id, fields in claimed[1] if fields]
        return await self._read(consumer, ">", count, max(1, int(block_s * 1000)))

    async def acknowledge(self, entry_ids: list[str]) -> None:
        """XACK and delete persisted entries."""
        if entry_ids:
            pipe = self._redis.pipeline(transaction=True)
            pipe.xack(self._stream, GROUP, *entry_ids)
            pipe.xdel(self._stream, *entry_ids)
            await pipe.execute()

    async def close(self) -> None:
        """Nothing to give back: Redis keeps the counters for the next node."""

    async def lag(self) -> tuple[int, float]:
        """Entries in the persistence stream and the age of the oldest."""
        length = await self._redis.xlen(self._stream)
        if not length:
            return 0, 0.0
        first: Any = await self._redis.xrange(self._stream, count=1)
        oldest_ms = int(first[0][0].split(b"-")[0]) if first else int(time.time() * 1000)
        return int(length), max(0.0, time.time() - oldest_ms / 1000)

    async def _read(
        self, consumer: str, start: str, count: int, block_ms: int | None
    ) -> list[PersistEntry]:
        response: Any = await self._redis.xreadgroup(
            GROUP, consumer, {self._stream: start}, count=count, block=block_ms
        )
        entries: list[PersistEntry] = []
        for _stream, items in response or []:
            entries.extend(self._entry(entry_id, fields) for entry_id, fields in items if fields)
        return entries

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _reserved(self, group_id: uuid.UUID, counter: int | None) -> None:
        """Reserve the group's next block and adopt it, one node at a time.

        Under the group's lock the counter is checked again: if another node already did
        what this one was about to do, nothing is reserved. The node that adopts a jump over
        lost seqs reports the loss, once.
        """
        lock, token = self._key("seqlock", group_id), uuid.uuid4().hex
        if not await self._redis.set(lock, token, nx=True, px=RESERVE_LOCK_MS):
            await asyncio.sleep(0.01)  # another reservation is under way; the caller retries
            return
        try:
            keys = [self._key("seq", group_id), self._key("ceil", group_id)]
            found, ceiling = await self._redis.mget(keys)
            if (found is not None) if counter is None else int(ceiling or 0) > counter:
                return
            reservation = await self._floors.reserve(group_id, counter)
            args = [reservation.floor, reservation.ceiling, int(reservation.lost)]
            if await self._adopt(keys=keys, args=args) and reservation.lost:
                report_loss(group_id, reservation.floor)
        finally:
            await self._unlock(keys=[lock], args=[token])

    def _key(self, kind: str, group_id: uuid.UUID) -> str:
        return f"{self._prefix}{kind}:{group_id}"

    def _keys(self, message: NewMessage) -> list[str]:
        group = message.group_id
        return [
            self._key("seq", group),
            f"{self._prefix}idem:{group}:{message.author_id}:{message.client_msg_id}",
            self._key("rec", group),
            self._stream,
            f"{self._prefix}rl:msg:{message.author_id}",
            self._key("ceil", group),
        ]

    def _args(self, message: NewMessage, rate: Rate) -> list[Any]:
        prefix, suffix = message.frame_template()
        created_ms = int(message.created_at.timestamp() * 1000)
        return [
            prefix,
            suffix,
            f"{self._prefix}g:{message.group_id}",
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
            rate.limit,
            message.created_at.isoformat(),
        ]

    @staticmethod
    def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> PersistEntry:
        created = int(fields[b"t"])
        row = {
            "id": uuid.UUID(fields[b"i"].decode()),
            "group_id": uuid.UUID(fields[b"g"].decode()),
            "seq": int(fields[b"s"]),
            "author_id": uuid.UUID(fields[b"a"].decode()),
            "body": fields[b"b"].decode(),
            "client_msg_id": fields[b"c"].decode(),
            "created_at": utc_from_ms(created),
        }
        return PersistEntry(entry_id.decode(), row, created / 1000)
