"""Where one subscription stands in its group's seq stream: duplicates, gaps, replays. No I/O.

The hub asks a :class:`Cursor` what to do with each live frame and each replayed one, and
carries out the answer (write frames, fetch a missing range, give up). A cursor is created
*holding*: live frames are kept aside while the subscription replays what the client missed,
and released after the replay, in seq order, without gaps or duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, Protocol, TypeVar


class Sequenced(Protocol):
    """Anything with the group's ``seq``."""

    @property
    def seq(self) -> int:
        """The position in the group's stream."""
        ...


T = TypeVar("T", bound=Sequenced)


class Verdict(IntEnum):
    """What to do with one live frame (the hot path: no allocation per frame)."""

    WRITE = 0
    """The next in seq order: write it (the cursor has moved on)."""
    SKIP = 1
    """A duplicate, or held until a replay ends: nothing to write now."""
    FILL = 2
    """A gap: the frame is held; fetch what follows :attr:`Cursor.delivered`."""
    OVERFLOW = 3
    """More held than the cursor may keep: the client must resubscribe."""


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """What to do when a replay ends.

    Attributes:
        write: frames to write, in seq order.
        fill_from: a gap: fetch what follows this seq, then :meth:`Cursor.replayed` and
            :meth:`Cursor.release`.
    """

    write: list[T] = field(default_factory=list)
    fill_from: int | None = None


class Cursor(Generic[T]):
    """The last seq written to one subscriber, and the frames held while it catches up."""

    __slots__ = ("_held", "delivered", "limit")

    def __init__(self, limit: int, delivered: int = 0) -> None:
        self.limit = limit
        self.delivered = delivered
        self._held: list[T] | None = []

    def live(self, item: T) -> Verdict:
        """A frame from the bus: write it, skip it (a duplicate, or held), or ask for a fill."""
        held = self._held
        if held is not None:
            if len(held) >= self.limit:
                return Verdict.OVERFLOW
            held.append(item)
            return Verdict.SKIP
        seq = item.seq
        delivered = self.delivered
        if seq == delivered + 1:
            self.delivered = seq
            return Verdict.WRITE
        if seq <= delivered:
            return Verdict.SKIP
        self._held = [item]
        return Verdict.FILL

    def hold(self) -> bool:
        """Keep live frames aside from now on (the bus may have missed some); False if already."""
        if self._held is not None:
            return False
        self._held = []
        return True

    def replayed(self, items: Iterable[T], upto: int) -> list[T]:
        """Frames of a replay that covers ``(delivered, upto]``: those to write, in order.

        The replay vouches for the whole range (deleted messages leave holes in it), so
        afterwards the cursor stands at ``upto``.
        """
        out = [item for item in items if self.delivered < item.seq <= upto]
        out.sort(key=_seq)
        self.delivered = max(self.delivered, upto)
        return out

    def release(self) -> Step[T]:
        """The replay is over: the held frames to write, and a fill if a gap remains."""
        held, self._held = self._held or [], None
        held.sort(key=_seq)
        write: list[T] = []
        for index, item in enumerate(held):
            if item.seq <= self.delivered:
                continue
            if item.seq > self.delivered + 1:
                self._held = held[index:]
                return Step(write, fill_from=self.delivered)
            self.delivered = item.seq
            write.append(item)
        return Step(write)


def _seq(item: Sequenced) -> int:
    return item.seq
