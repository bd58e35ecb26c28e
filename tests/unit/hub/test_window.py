"""A node's recent window: a gapless run of the latest items, answering ranges it covers."""

from __future__ import annotations

from dataclasses import dataclass

from server.hub.window import RecentWindow


@dataclass(frozen=True)
class Item:
    seq: int
    size: int = 100


def filled(*seqs: int, size: int = 5) -> RecentWindow[Item]:
    window: RecentWindow[Item] = RecentWindow(size)
    for seq in seqs:
        window.add(Item(seq))
    return window


def test_a_covered_range_comes_from_memory() -> None:
    """Items 3..7 held: (4, 7] is answered; (2, 7] starts before the window: not."""
    window = filled(3, 4, 5, 6, 7)
    assert [i.seq for i in window.covering(4, 7) or []] == [5, 6, 7]
    assert [i.seq for i in window.covering(2, 7) or []] == [3, 4, 5, 6, 7]
    assert window.covering(1, 7) is None
    assert window.covering(5, 8) is None  # the window has not seen 8 yet
    assert window.covering(7, 7) == []


def test_only_the_latest_items_are_kept() -> None:
    """A window of 3 keeps 5, 6, 7 of 1..7."""
    window = filled(1, 2, 3, 4, 5, 6, 7, size=3)
    assert window.covering(3, 7) is None
    assert [i.seq for i in window.covering(4, 7) or []] == [5, 6, 7]


def test_duplicates_are_ignored_and_a_gap_starts_again() -> None:
    """A repeated seq changes nothing; 1, 2 then 5: the window restarts at 5."""
    window = filled(1, 2, 2, 1)
    assert [i.seq for i in window.covering(0, 2) or []] == [1, 2]
    window.add(Item(5))
    assert window.covering(0, 5) is None and window.covering(2, 5) is None
    assert [i.seq for i in window.covering(4, 5) or []] == [5]
    window.clear()
    assert window.covering(4, 5) is None


def test_the_window_is_bounded_in_bytes_too() -> None:
    """Three items of 400 bytes in a 1,000-byte window: the oldest goes."""
    window: RecentWindow[Item] = RecentWindow(10, max_bytes=1000)
    for seq in (1, 2, 3):
        window.add(Item(seq, size=400))
    assert window.covering(0, 3) is None
    assert [i.seq for i in window.covering(1, 3) or []] == [2, 3]
    window.add(Item(4, size=5000))  # over the bound alone: kept, as the newest
    assert [i.seq for i in window.covering(3, 4) or []] == [4]
    window.clear()
    for seq in (10, 11):
        window.add(Item(seq, size=400))
    assert [i.seq for i in window.covering(9, 11) or []] == [10, 11]
