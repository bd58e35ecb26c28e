"""Where one subscription stands in its group's seq stream: duplicates, gaps, replays. No I/O.

The hub asks a :class:`Cursor` what to do with each live frame and each replayed one, and
carries out the answer (write frames, fetch a missing range, give up). A cursor is created
*holding*: live frames are kept aside while the subscription replays what the client missed,
and released after the replay, in seq order, without gaps or duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Sequenced(Protocol):
    """Anything with the group's ``seq``."""

    @property
    def seq(self) -> int:
        """The position in the group's stream."""
        ...


T = TypeVar("T", bound=Sequenced)


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """What to do now.

    Attributes:
        write: frames to write, in seq order.
        fill_from: a gap: fetch what follows this seq, then :meth:`Cursor.replayed` and
            :meth:`Cursor.release`.
        overflow: more arrived while holding than the cursor may keep: the subscription
            cannot catch up by itself (the client must resubscribe with ``since_seq``).
    """

    write: list[T] = field(default_factory=list)
    fill_from: int | None = None
    overflow: bool = False


class Cursor(Generic[T]):
    """The last seq written to one subscriber, and the frames held while it catches up."""

    __slots__ = ("_held", "delivered", "limit")

    def __init__(self, limit: int, delivered: int = 0) -> None:
        self.limit = limit
        self.delivered = delivered
        self._held: list[T] | None = []

    def live(self, item: T) -> Step[T]:
        """A frame from the bus: write it, drop it (a duplicate), hold it, or ask for a fill."""
        held = self._held
        if held is not None:
            if len(held) >= self.limit:
                return Step(overflow=True)
            held.append(item)
            return Step()
        if item.seq <= self.delivered:
            return Step()
        if item.seq == self.delivered + 1:
            self.delivered = item.seq
            return Step([item])
        self._held = [item]
        return Step(fill_from=self.delivered)

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
