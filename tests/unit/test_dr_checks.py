"""The disaster-recovery drill's checks: what they accept and what they catch."""

from __future__ import annotations

from scripts.drill.traffic import Ack
from scripts.drill.verify import Stored, Timeline, check, figures

G = "11111111-1111-1111-1111-111111111111"
R = 1000.0
TIMELINE = Timeline(
    base_backup_done=990.0,
    newest_aof_copy=1001.0,
    newest_archived_commit=1001.5,
    recovery_point=R,
    destroyed=1002.0,
    postgres_restored=1004.0,
    redis_restored=1004.1,
    nodes_ready=1007.0,
    serving_history=1007.2,
    drained=1007.5,
)


def ack(seq: int, acked_at: float, tag: str = "") -> Ack:
    return Ack(0, G, f"c{seq}{tag}", f"body {seq}{tag}", seq, f"m{seq}{tag}", acked_at)


def row(a: Ack) -> Stored:
    return Stored(a.group_id, a.seq, a.message_id, "author", a.body, a.client_msg_id)


def test_a_clean_restore_passes_and_measures_rpo() -> None:
    before = [ack(1, 998.0), ack(2, 999.5)]
    lost = ack(3, 1000.4)
    after = ack(3, 1008.0, "new")
    verdict = check([*before, lost, after], [row(a) for a in [*before, after]], TIMELINE)

    assert verdict.failures == []
    assert verdict.counts["acked before R"] == 2
    assert verdict.counts["acked R..destruction lost"] == 1
    assert verdict.counts["lost seqs reassigned"] == 1
    assert verdict.survivors_last_ack == 999.5
    shown = dict(figures(verdict, TIMELINE))
    assert shown["RPO measured D - last surviving ack"] == "2.50 s"
    assert shown["RPO bound D - R"] == "2.00 s"
    assert shown["RTO D -> nodes serving history"] == "5.20 s"
    assert any("no epoch" in note for note in verdict.notes)


def test_a_missing_or_changed_message_acked_before_r_fails() -> None:
    first, second = ack(1, 998.0), ack(2, 999.0)
    changed = Stored(G, 2, second.message_id, "author", "other body", second.client_msg_id)
    verdict = check([first, second], [changed], TIMELINE)

    assert any("LOST acked-before-R" in failure for failure in verdict.failures)
    assert any("changed" in failure for failure in verdict.failures)
    assert any("seq gap, missing [1]" in failure for failure in verdict.failures)


def test_duplicates_in_history_fail() -> None:
    first = ack(1, 998.0)
    verdict = check([first], [row(first), row(first)], TIMELINE)

    assert any("duplicate seq 1" in failure for failure in verdict.failures)
    assert any("2 times" in failure for failure in verdict.failures)
    assert any("stored 2 times" in failure for failure in verdict.failures)


def test_a_seq_taken_in_postgresql_after_the_restore_is_seq_reuse() -> None:
    held = ack(1, 999.0)
    reused = ack(1, 1008.0, "new")  # acked after the restore with a seq PostgreSQL holds
    verdict = check([held, reused], [row(held)], TIMELINE)

    assert len(verdict.failures) == 1
    assert verdict.failures[0].startswith("SEQ REUSE")
    assert held.message_id in verdict.failures[0]
