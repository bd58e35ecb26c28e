"""Per-socket delivery accounting: lost, duplicated and out-of-order messages, by ``seq``.

Plain Python (no Locust, no I/O), so the Chatter's bookkeeping is unit-tested on its own.
The contract (section 5): per group, ``seq`` grows by exactly 1 per message and every
subscriber sees a group's messages in ``seq`` order. So a socket that has seen ``seq`` n of a
group must see n+1 next. A jump leaves the skipped numbers *missing*: one that turns up
later arrived out of order; one still missing after ``grace_s`` is lost. The sender's own
acked messages are *promised*: not seeing one within ``grace_s`` of its ack is a loss too,
which catches a lost last message that no later message would reveal. A message counted
lost that turns up after all is taken back from the losses and counted *late* (an
overloaded run's slowness, which its delivery percentiles already show).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    """What one received message was, for the socket that received it."""

    IN_ORDER = "in order"
    AHEAD = "ahead"
    """Delivered, but past a gap: the skipped ones are missing."""
    OUT_OF_ORDER = "out of order"
    """A missing one turned up late."""
    DUPLICATE = "duplicate"
    UNEXPECTED = "unexpected"
    """A message of a group this socket never subscribed to."""


@dataclass
class Tally:
    """Totals over a tracker's life."""

    delivered: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    lost: int = 0
    unrecovered: int = 0
    """Messages a re-subscription could not replay (``recovered: false``)."""
    unexpected: int = 0
    late: int = 0
    """Counted lost, then delivered after all (not a fault: latency shows it)."""

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to these."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def faults(self) -> int:
        """Everything that breaks the contract's ordering and delivery guarantee."""
        return self.duplicated + self.out_of_order + self.lost + self.unrecovered + self.unexpected


@dataclass
class _Group:
    last: int
    missing: dict[int, float] = field(default_factory=dict)
    """Skipped seqs, with when they were first known to be due."""
    promised: dict[int, float] = field(default_factory=dict)
    """Acked seqs above ``last``, with the ack's time."""
    written_off: set[int] = field(default_factory=set)
    """Seqs counted lost and not seen since."""
    detached: bool = False
    """A re-subscription failed: nothing is delivered until the next one succeeds."""


class SequenceTracker:
    """The seqs one socket has seen, per group."""

    def __init__(self, grace_s: float = 5.0) -> None:
        self.grace_s = grace_s
        self.tally = Tally()
        self._groups: dict[str, _Group] = {}

    def since(self, group: str) -> int | None:
        """The ``since_seq`` to re-subscribe with: the highest seq seen (None if never)."""
        state = self._groups.get(group)
        return None if state is None else state.last

    def subscribed(self, group: str, last_seq: int, recovered: bool) -> int:
        """Record a ``subscribed`` frame; returns how many messages it shows lost.

        The first subscription sets the baseline. After a re-subscription with
        ``since_seq``, the replay came first: with ``recovered`` every seq up to ``last_seq``
        should have been seen, and the ones that were not are lost; without it, they are
        counted as unrecovered and skipped.
        """
        state = self._groups.get(group)
        if state is None:
            self._groups[group] = _Group(last=last_seq)
            return 0
        state.detached = False
        skipped = [seq for seq in state.missing if seq <= last_seq]
        skipped += range(state.last + 1, last_seq + 1)
        skipped = [seq for seq in skipped if seq not in state.written_off]
        for seq in skipped:
            state.missing.pop(seq, None)
            state.promised.pop(seq, None)
        state.last = max(state.last, last_seq)
        if recovered:
            state.written_off.update(skipped)
            self.tally.lost += len(skipped)
            return len(skipped)
        self.tally.unrecovered += len(skipped)
        return 0

    def observe(self, group: str, seq: int, now: float) -> Outcome:
        """Record one received ``message`` frame."""
        state = self._groups.get(group)
        if state is None:
            self.tally.unexpected += 1
            return Outcome.UNEXPECTED
        late = seq in state.written_off
        if late:
            state.written_off.discard(seq)
            self.tally.lost -= 1
            self.tally.late += 1
        if seq <= state.last:
            if state.missing.pop(seq, None) is None and not late:
                self.tally.duplicated += 1
                return Outcome.DUPLICATE
            self.tally.delivered += 1
            self.tally.out_of_order += 1
            return Outcome.OUT_OF_ORDER
        outcome = Outcome.IN_ORDER if seq == state.last + 1 else Outcome.AHEAD
        for skipped in range(state.last + 1, seq):
            if skipped not in state.written_off:
                state.missing[skipped] = state.promised.pop(skipped, now)
        state.promised.pop(seq, None)
        state.last = seq
        self.tally.delivered += 1
        return outcome

    def promise(self, group: str, seq: int, now: float) -> None:
        """The server acked ``seq`` in ``group``: this socket, subscribed, must see it."""
        state = self._groups.get(group)
        if state is None or state.detached:
            return
        if seq > state.last and seq not in state.written_off:
            state.promised.setdefault(seq, now)

    def detach(self, group: str) -> None:
        """A (re-)subscription failed: expect nothing until the next ``subscribed``.

        Acked messages are no longer promised to this socket (it is not subscribed); what
        was missed meanwhile is checked when the next re-subscription replays from
        :meth:`since`.
        """
        state = self._groups.get(group)
        if state is not None:
            state.detached = True
            state.promised.clear()

    def expire(self, now: float, grace_s: float | None = None) -> int:
        """Count as lost what is overdue by more than ``grace_s``; returns how many."""
        grace = self.grace_s if grace_s is None else grace_s
        lost = 0
        for state in self._groups.values():
            overdue = [seq for seq, due in state.missing.items() if now - due >= grace]
            for seq in overdue:
                del state.missing[seq]
                state.written_off.add(seq)
            broken = [seq for seq, due in state.promised.items() if now - due >= grace]
            for seq in broken:
                del state.promised[seq]
                state.written_off.add(seq)
            lost += len(overdue) + len(broken)
        self.tally.lost += lost
        return lost

    def outstanding(self) -> int:
        """Messages still awaited (missing or promised)."""
        return sum(len(s.missing) + len(s.promised) for s in self._groups.values())
