"""The Chatter's delivery accounting: what counts as lost, duplicated, out of order."""

from __future__ import annotations

from loadtests.accounting import Outcome, SequenceTracker, Tally

G = "group-a"


def _tracker(last_seq: int = 0) -> SequenceTracker:
    tracker = SequenceTracker(grace_s=5.0)
    assert tracker.subscribed(G, last_seq, recovered=False) == 0
    return tracker


def test_a_healthy_stream_has_no_faults() -> None:
    """Seqs 6, 7, 8 after subscribing at 5: all in order, nothing outstanding."""
    tracker = _tracker(5)
    assert [tracker.observe(G, seq, 0.0) for seq in (6, 7, 8)] == [Outcome.IN_ORDER] * 3
    assert tracker.expire(100.0) == 0
    assert tracker.tally == Tally(delivered=3)
    assert tracker.since(G) == 8


def test_a_dropped_message_is_lost_after_the_grace_period() -> None:
    """1 then 3: 2 is missing; still missing 5 s later, it is lost."""
    tracker = _tracker()
    tracker.observe(G, 1, 0.0)
    assert tracker.observe(G, 3, 1.0) is Outcome.AHEAD
    assert tracker.expire(5.9) == 0
    assert tracker.outstanding() == 1
    assert tracker.expire(6.0) == 1
    assert tracker.tally.lost == 1
    assert tracker.tally.faults == 1


def test_a_reordered_message_is_out_of_order_not_lost() -> None:
    """1, 3, 2: the late 2 is delivered out of order; nothing is lost."""
    tracker = _tracker()
    outcomes = [tracker.observe(G, seq, 0.0) for seq in (1, 3, 2)]
    assert outcomes == [Outcome.IN_ORDER, Outcome.AHEAD, Outcome.OUT_OF_ORDER]
    assert tracker.expire(60.0) == 0
    assert tracker.tally == Tally(delivered=3, out_of_order=1)


def test_a_repeated_message_is_a_duplicate() -> None:
    """1, 2, 2: the second 2 is a duplicate."""
    tracker = _tracker()
    tracker.observe(G, 1, 0.0)
    tracker.observe(G, 2, 0.0)
    assert tracker.observe(G, 2, 0.0) is Outcome.DUPLICATE
    assert tracker.tally.duplicated == 1


def test_an_acked_message_never_delivered_is_lost() -> None:
    """The sender's last message is acked as seq 4 but never arrives: lost, once."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 10.0)
    tracker.promise(G, 4, 11.0)
    assert tracker.expire(14.0) == 0
    assert tracker.expire(15.0) == 1
    assert tracker.observe(G, 5, 16.0) is Outcome.AHEAD
    assert tracker.expire(100.0) == 0
    assert tracker.tally.lost == 1


def test_an_acked_message_that_arrives_is_not_lost() -> None:
    """Promised 4 arrives; a promise at or below what was seen is already kept."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 0.0)
    tracker.observe(G, 4, 0.1)
    tracker.promise(G, 4, 0.2)
    assert tracker.outstanding() == 0
    assert tracker.expire(100.0) == 0


def test_an_acked_message_skipped_over_is_missing_from_its_ack() -> None:
    """Promised 4 is skipped by 5: it is missing since the ack, so due 5 s after it."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 0.0)
    tracker.observe(G, 5, 4.0)
    assert tracker.expire(5.0) == 1


def test_a_complete_replay_after_reconnecting_loses_nothing() -> None:
    """Seen up to 2; re-subscribed with since_seq 2; 3 and 4 replayed; recovered up to 4."""
    tracker = _tracker()
    tracker.observe(G, 1, 0.0)
    tracker.observe(G, 2, 0.0)
    assert tracker.since(G) == 2
    tracker.observe(G, 3, 1.0)
    tracker.observe(G, 4, 1.0)
    assert tracker.subscribed(G, 4, recovered=True) == 0
    assert tracker.tally.faults == 0


def test_an_incomplete_replay_is_a_loss_at_once() -> None:
    """Recovered up to 5 but only 3 was replayed (and 1 was missing): 3 lost now."""
    tracker = _tracker()
    tracker.observe(G, 2, 0.0)
    tracker.observe(G, 3, 0.0)
    tracker.promise(G, 5, 0.0)
    assert tracker.subscribed(G, 5, recovered=True) == 3
    assert tracker.tally.lost == 3
    assert tracker.outstanding() == 0


def test_a_written_off_message_is_not_lost_twice_by_a_replay() -> None:
    """Promised 4 expired (lost); the replay then reports up to 4: no second count."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 0.0)
    assert tracker.expire(10.0) == 1
    assert tracker.subscribed(G, 4, recovered=True) == 0
    assert tracker.tally.lost == 1


def test_an_unrecoverable_gap_is_counted_apart() -> None:
    """recovered: false past the window: the skipped messages are unrecovered, not lost."""
    tracker = _tracker()
    tracker.observe(G, 1, 0.0)
    assert tracker.subscribed(G, 1500, recovered=False) == 0
    assert tracker.tally.unrecovered == 1499
    assert tracker.tally.lost == 0
    assert tracker.observe(G, 1501, 0.0) is Outcome.IN_ORDER


def test_a_message_of_an_unknown_group_is_unexpected() -> None:
    """Frames of a group never subscribed to are a fault."""
    tracker = SequenceTracker()
    assert tracker.since(G) is None
    tracker.promise(G, 1, 0.0)
    assert tracker.observe(G, 1, 0.0) is Outcome.UNEXPECTED
    assert tracker.tally.faults == 1


def test_finishing_writes_off_everything_outstanding() -> None:
    """At the end of a run, a zero grace counts whatever is still awaited."""
    tracker = _tracker()
    tracker.observe(G, 2, 0.0)
    tracker.promise(G, 3, 0.0)
    assert tracker.expire(0.0, grace_s=0) == 2


def test_tallies_add_up() -> None:
    """Per-socket tallies are summed into the run's."""
    total = Tally(delivered=1)
    total.add(Tally(delivered=2, lost=1, duplicated=1))
    assert total == Tally(delivered=3, lost=1, duplicated=1)
    assert total.faults == 2


def test_a_failed_resubscription_promises_nothing_until_the_next() -> None:
    """Re-subscribing failed (503): own acks are not owed; the next replay settles it."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 0.0)
    tracker.detach(G)
    tracker.promise(G, 5, 0.0)
    assert tracker.outstanding() == 0
    assert tracker.expire(100.0) == 0
    assert tracker.since(G) == 3
    tracker.observe(G, 4, 101.0)
    assert tracker.subscribed(G, 5, recovered=True) == 1
    tracker.promise(G, 6, 102.0)
    assert tracker.outstanding() == 1


def test_detaching_an_unknown_group_is_harmless() -> None:
    """A first subscription that failed leaves nothing to detach."""
    tracker = SequenceTracker()
    tracker.detach(G)
    assert tracker.since(G) is None


def test_a_late_acked_message_is_taken_back_from_the_losses() -> None:
    """Promised 4 is counted lost after 5 s, then arrives: late, not lost."""
    tracker = _tracker(3)
    tracker.promise(G, 4, 0.0)
    assert tracker.expire(5.0) == 1
    assert tracker.observe(G, 4, 9.0) is Outcome.IN_ORDER
    assert tracker.tally == Tally(delivered=1, late=1)
    assert tracker.observe(G, 4, 9.5) is Outcome.DUPLICATE


def test_a_late_skipped_message_is_out_of_order_not_lost() -> None:
    """1, 3; 2 counted lost after 5 s; 2 then arrives: late and out of order."""
    tracker = _tracker()
    tracker.observe(G, 1, 0.0)
    tracker.observe(G, 3, 0.0)
    assert tracker.expire(5.0) == 1
    assert tracker.observe(G, 2, 7.0) is Outcome.OUT_OF_ORDER
    assert tracker.tally == Tally(delivered=3, out_of_order=1, late=1)
