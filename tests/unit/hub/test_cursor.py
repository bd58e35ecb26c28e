"""The subscription cursor: duplicates, gaps, out-of-order frames, replays, overflow."""

from __future__ import annotations

from dataclasses import dataclass

from server.hub.cursor import Cursor, Step, Verdict


@dataclass(frozen=True)
class Item:
    seq: int


def seqs(step: Step[Item] | list[Item]) -> list[int]:
    items = step.write if isinstance(step, Step) else step
    return [item.seq for item in items]


def live_cursor(delivered: int = 0, limit: int = 10) -> Cursor[Item]:
    """A cursor past its initial replay, standing at ``delivered``."""
    cursor: Cursor[Item] = Cursor(limit, delivered)
    assert cursor.release() == Step()
    return cursor


def test_in_order_frames_are_written_and_advance_the_cursor() -> None:
    """Each next seq is written at once."""
    cursor = live_cursor(4)
    assert cursor.live(Item(5)) is Verdict.WRITE
    assert cursor.live(Item(6)) is Verdict.WRITE
    assert cursor.delivered == 6
    assert cursor.hold()  # it was not holding


def test_duplicates_are_dropped() -> None:
    """A seq at or below the last written one is written once only."""
    cursor = live_cursor(4)
    assert cursor.live(Item(4)) is Verdict.SKIP
    assert cursor.live(Item(2)) is Verdict.SKIP
    assert cursor.live(Item(5)) is Verdict.WRITE
    assert cursor.live(Item(5)) is Verdict.SKIP


def test_a_gap_holds_newer_frames_and_asks_for_a_fill() -> None:
    """Seq 7 after 4: hold 7, fetch what follows 4, then write 5, 6, 7 in order."""
    cursor = live_cursor(4)
    assert cursor.live(Item(7)) is Verdict.FILL and cursor.delivered == 4
    assert cursor.live(Item(8)) is Verdict.SKIP
    assert seqs(cursor.replayed([Item(5), Item(6)], upto=6)) == [5, 6]
    assert seqs(cursor.release()) == [7, 8]
    assert cursor.delivered == 8
    assert cursor.hold()  # it was not holding


def test_out_of_order_frames_while_holding_come_out_sorted() -> None:
    """Frames held out of order are released in seq order, duplicates dropped."""
    cursor = live_cursor(0)
    assert cursor.hold()
    for seq in (3, 1, 2, 2, 4):
        assert cursor.live(Item(seq)) is Verdict.SKIP
    assert seqs(cursor.release()) == [1, 2, 3, 4]


def test_replay_overlapping_live_traffic_writes_each_seq_once() -> None:
    """A subscriber replays 11..20 while 18..22 arrive live: 11..22, each once, in order."""
    cursor: Cursor[Item] = Cursor(100, 10)
    for seq in (18, 19, 20, 21, 22):
        cursor.live(Item(seq))
    replay = [Item(seq) for seq in range(11, 21)]
    assert seqs(cursor.replayed(replay, upto=20)) == list(range(11, 21))
    assert seqs(cursor.release()) == [21, 22]


def test_replay_in_chunks_advances_by_chunk() -> None:
    """Replayed in two chunks, the second chunk's overlap with the first is dropped."""
    cursor: Cursor[Item] = Cursor(100, 0)
    assert seqs(cursor.replayed([Item(1), Item(2), Item(3)], upto=3)) == [1, 2, 3]
    assert seqs(cursor.replayed([Item(3), Item(4)], upto=4)) == [4]
    assert cursor.delivered == 4
    assert cursor.live(Item(5)) is Verdict.SKIP  # still holding: 5 waits for the release


def test_a_replay_with_holes_for_deleted_messages_moves_past_them() -> None:
    """Deleted messages are missing from a replay; the cursor still stands at its end."""
    cursor: Cursor[Item] = Cursor(100, 0)
    assert seqs(cursor.replayed([Item(1), Item(3)], upto=3)) == [1, 3]
    cursor.live(Item(4))
    assert seqs(cursor.release()) == [4]


def test_a_gap_left_after_a_replay_asks_for_another_fill() -> None:
    """Held 9 after a replay up to 6: 7 and 8 are still missing, so fill again from 6."""
    cursor: Cursor[Item] = Cursor(100, 0)
    cursor.live(Item(9))
    cursor.live(Item(10))
    cursor.replayed([Item(seq) for seq in range(1, 7)], upto=6)
    step = cursor.release()
    assert step == Step([], fill_from=6)
    assert seqs(cursor.replayed([Item(7), Item(8)], upto=8)) == [7, 8]
    assert seqs(cursor.release()) == [9, 10]


def test_holding_more_than_the_window_overflows() -> None:
    """Past ``limit`` held frames the subscription cannot catch up by itself."""
    cursor: Cursor[Item] = Cursor(3, 0)
    for seq in (1, 2, 3):
        assert cursor.live(Item(seq)) is Verdict.SKIP
    assert cursor.live(Item(4)) is Verdict.OVERFLOW


def test_hold_is_idempotent() -> None:
    """Holding twice (two bus reconnects during one fill) keeps what is held."""
    cursor = live_cursor(0)
    assert cursor.hold()
    cursor.live(Item(1))
    assert not cursor.hold()
    assert seqs(cursor.release()) == [1]
