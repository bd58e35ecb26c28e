"""The presence book: a node's view of who is online, and its changes batched per group."""

from __future__ import annotations

import uuid

from server.hub.presence import Diff, PresenceBook

GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000bb")
ALICE = uuid.UUID("00000000-0000-4000-8000-000000000001")
BOB = uuid.UUID("00000000-0000-4000-8000-000000000002")
CAROL = uuid.UUID("00000000-0000-4000-8000-000000000003")


def test_changes_are_batched_per_group_and_taken_once() -> None:
    """Two groups, three changes: two diffs, then nothing waits."""
    book = PresenceBook()
    assert book.change(GROUP, ALICE, True)  # the first change of a batch
    assert not book.change(GROUP, BOB, True)
    assert not book.change(OTHER, CAROL, False)
    assert sorted(book.take(), key=lambda d: str(d.group_id)) == [
        Diff(GROUP, [ALICE, BOB], []),
        Diff(OTHER, [], [CAROL]),
    ]
    assert book.take() == []


def test_coming_and_going_within_a_batch_is_no_news() -> None:
    """Online then offline (or the reverse) before the batch goes out: nothing announced."""
    book = PresenceBook()
    book.change(GROUP, ALICE, True)
    book.change(GROUP, ALICE, False)
    book.change(GROUP, BOB, False)
    book.change(GROUP, BOB, True)
    assert book.take() == []


def test_the_view_follows_diffs_and_shows_a_subscriber_itself_at_once() -> None:
    """Loaded from the registry, moved by diffs; a new subscriber is online immediately."""
    book = PresenceBook()
    book.load(GROUP, [ALICE])
    book.change(GROUP, BOB, True)
    assert sorted(book.online(GROUP)) == sorted([ALICE, BOB]) and book.count(GROUP) == 2
    assert book.online(GROUP) is book.online(GROUP)  # one list until the view changes
    book.apply(Diff(GROUP, [CAROL], [ALICE]))
    assert sorted(book.online(GROUP)) == sorted([BOB, CAROL])


def test_diffs_of_unknown_groups_are_ignored_and_views_can_be_dropped() -> None:
    """No local subscriber, no view: diffs pass by; dropping a view forgets it."""
    book = PresenceBook()
    book.apply(Diff(GROUP, [ALICE], []))
    assert not book.knows(GROUP) and book.online(GROUP) == []
    book.load(GROUP, [ALICE])
    assert book.knows(GROUP) and book.groups() == [GROUP]
    book.drop(GROUP)
    assert not book.knows(GROUP) and book.count(GROUP) == 0
