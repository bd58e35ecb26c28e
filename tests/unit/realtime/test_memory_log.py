"""The in-process message log on a fake clock, and the pieces both implementations share.

The behaviour shared with Redis is in ``tests/integration/test_message_log_contract.py``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

import server.realtime.memory_log as message_log_module
from protocol.frames import MessageCreated
from server.bus.memory import MemoryBus
from server.errors import RateLimited
from server.realtime.envelope import group_channel, unpack
from server.realtime.log import (
    IDEMPOTENCY_TTL_S,
    Accepted,
    NewMessage,
    ack_value,
    parse_ack,
    utc_from_ms,
)
from server.realtime.memory_log import MemoryMessageLog
from server.security.ratelimit import Rate
from tests.fixtures.clock import FrozenClock
from tests.fixtures.floors import DictFloors

GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
AUTHOR = uuid.UUID("00000000-0000-4000-8000-000000000001")
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GENEROUS = Rate(1000, 1.0)


@pytest.fixture
def clock() -> FrozenClock:
    """Time that only moves when the test says so."""
    return FrozenClock(START)


@pytest.fixture
def bus() -> MemoryBus:
    """The in-process bus the log publishes on."""
    return MemoryBus()


@pytest.fixture
def log(bus: MemoryBus, clock: FrozenClock) -> MemoryMessageLog:
    """A log with a 5-message, one-hour recovery window on the fake clock."""
    return MemoryMessageLog(bus, DictFloors(), window=5, window_s=3600, clock=clock.time)


def message(clock: FrozenClock, client_msg_id: str | None = None, body: str = "hi") -> NewMessage:
    """A message created at the fake clock's current time."""
    return NewMessage(
        group_id=GROUP,
        author_id=AUTHOR,
        message_id=uuid.uuid4(),
        body=body,
        client_msg_id=client_msg_id or uuid.uuid4().hex,
        created_at=utc_from_ms(int(clock.time() * 1000)),
    )


# --- shared pieces -----------------------------------------------------------------------


def test_frame_template_splits_around_the_seq() -> None:
    """The frame is cut where the seq goes, so the append can fill it in last."""
    clock = FrozenClock(START)
    new = message(clock, client_msg_id="c-1", body='a body with "seq":0, inside')
    prefix, suffix = new.frame_template()
    frame = msgspec.json.decode(prefix + b"17" + suffix, type=MessageCreated)
    assert frame.seq == 17
    assert frame.body == 'a body with "seq":0, inside'
    assert frame.message_id == new.message_id
    assert frame.client_msg_id == "c-1"


def test_row_is_the_messages_table_row() -> None:
    """A logged message becomes exactly one ``messages`` row with its seq."""
    new = message(FrozenClock(START), client_msg_id="c-2")
    assert new.row(5) == {
        "id": new.message_id,
        "group_id": GROUP,
        "seq": 5,
        "author_id": AUTHOR,
        "body": "hi",
        "client_msg_id": "c-2",
        "created_at": new.created_at,
        "deleted_at": None,
    }


def test_ack_record_round_trips_as_a_duplicate() -> None:
    """The idempotency record rebuilds the first ack, flagged as a duplicate."""
    message_id = uuid.uuid4()
    created = datetime(2026, 1, 1, 8, 30, 0, 250000, tzinfo=UTC)
    assert parse_ack(ack_value(12, message_id, created)) == Accepted(12, message_id, created, True)


def test_utc_from_ms_is_aware_utc() -> None:
    """Epoch milliseconds become an aware UTC datetime, milliseconds kept."""
    assert utc_from_ms(1_767_225_600_123) == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


# --- time-dependent behaviour on the fake clock ------------------------------------------


async def test_rate_limit_recovers_as_time_passes(
    log: MemoryMessageLog, clock: FrozenClock
) -> None:
    """At 3 per second, the fourth message waits a third of a second, not longer."""
    rate = Rate(3, 1.0)
    for _ in range(3):
        await log.append(message(clock), rate)
    with pytest.raises(RateLimited) as refused:
        await log.append(message(clock), rate)
    assert refused.value.retry_after == 1
    clock.advance(0.34)
    assert (await log.append(message(clock), rate)).seq == 4


async def test_idempotency_expires_after_a_day(log: MemoryMessageLog, clock: FrozenClock) -> None:
    """A client_msg_id is remembered for 24 h; reused after that, it is a new message."""
    first = await log.append(message(clock, "same"), GENEROUS)
    clock.advance(IDEMPOTENCY_TTL_S - 1)
    assert (await log.append(message(clock, "same"), GENEROUS)).duplicate
    clock.advance(2)
    later = await log.append(message(clock, "same"), GENEROUS)
    assert not later.duplicate
    assert later.seq == first.seq + 1


async def test_remembered_acks_are_bounded(
    log: MemoryMessageLog, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the cap, the oldest idempotency records are forgotten first."""
    monkeypatch.setattr(message_log_module, "MAX_REMEMBERED_ACKS", 2)
    for key in ("k1", "k2", "k3"):
        await log.append(message(clock, key), GENEROUS)
    assert not (await log.append(message(clock, "k1"), GENEROUS)).duplicate
    assert (await log.append(message(clock, "k3"), GENEROUS)).duplicate


async def test_recent_leaves_out_frames_older_than_the_window(
    log: MemoryMessageLog, clock: FrozenClock
) -> None:
    """Frames older than ``window_s`` are no longer replayed."""
    await log.append(message(clock), GENEROUS)
    clock.advance(1800)
    await log.append(message(clock), GENEROUS)
    clock.advance(1801)
    assert [r.seq for r in await log.recent(GROUP, 0, 10)] == [2]


async def test_recent_keeps_only_the_last_window_messages(
    log: MemoryMessageLog, clock: FrozenClock
) -> None:
    """The window holds the group's last ``window`` messages."""
    for _ in range(7):
        await log.append(message(clock), GENEROUS)
    assert [r.seq for r in await log.recent(GROUP, 0, 10)] == [3, 4, 5, 6, 7]


async def test_lag_counts_the_queue_without_an_age(
    log: MemoryMessageLog, clock: FrozenClock
) -> None:
    """In process the queue length is the lag; its age is not tracked."""
    for _ in range(2):
        await log.append(message(clock), GENEROUS)
    clock.advance(60)
    assert await log.lag() == (2, 0.0)


async def test_an_entry_stays_until_acknowledged(log: MemoryMessageLog, clock: FrozenClock) -> None:
    """A handed-out entry comes back (a failed write) until acknowledged, then is gone."""
    sent = message(clock)
    await log.append(sent, GENEROUS)
    (entry,) = await log.pending(0, "any", 10, 0.1)
    assert entry.entry_id == str(sent.message_id)
    assert entry.logged_at == START
    assert await log.pending(0, "any", 10, 0.01) == [entry]
    assert await log.pending(0, "any", 10, 0.01, own=False) == []
    assert await log.lag() == (1, 0.0)
    await log.acknowledge(0, [entry.entry_id])
    assert await log.pending(0, "any", 10, 0.01) == []
    assert await log.lag() == (0, 0.0)
    assert await log.adopt(0, "any") == 0
    assert log.partitions == 1


async def test_published_subject_is_the_creation_time(
    log: MemoryMessageLog, bus: MemoryBus, clock: FrozenClock
) -> None:
    """The envelope's subject is created_ms, which receivers use for fan-out latency."""
    payloads: list[bytes] = []
    await bus.subscribe(group_channel(GROUP), lambda _channel, payload: payloads.append(payload))
    await log.append(message(clock), GENEROUS)
    (payload,) = payloads
    assert unpack(payload).subject == str(int(START * 1000))
