"""What the drill checks after the restore, and the figures it prints.

Times are wall-clock Unix seconds on this one host (the senders, Redis and PostgreSQL share a
clock). ``R`` is the recovery point, ``D`` the destruction of both data directories.

- Every ack that arrived before ``R`` must be in REST history exactly once, with its seq,
  message id and body. Any missing, duplicated or different one fails the drill.
- History must hold each ``(group, seq)``, message id and ``(author, client_msg_id)`` once,
  and each group's seqs must run 1..max without a gap.
- Acks that arrived after ``R`` and before the restore may be lost (they are after the recovery
  point); they are counted as survived or lost. A lost one whose seq now belongs to another
  message is a *reassigned seq*: a client that saw the lost message has a different message
  at that seq now, and nothing in the protocol tells it (reported, not failed).
- Every ack after the restore must be in history too. One that is not, because its
  ``(group, seq)`` was already taken in PostgreSQL, is *seq reuse*: the restored counter was
  behind the database. That fails the drill.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.drill.traffic import Ack


@dataclass(frozen=True)
class Stored:
    """A message as REST history serves it."""

    group_id: str
    seq: int
    message_id: str
    author_id: str
    body: str
    client_msg_id: str


async def fetch_history(base_url: str, token: str, group_id: str) -> list[Stored]:
    """Every message of the group, oldest first, paged by ``after_seq``."""
    out: list[Stored] = []
    after = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        while True:
            answer = await http.get(
                f"/api/v1/study-groups/{group_id}/messages",
                params={"sort": "seq", "after_seq": after, "page_size": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
            answer.raise_for_status()
            items: list[dict[str, Any]] = answer.json()["data"]
            out.extend(_stored(group_id, item) for item in items)
            if len(items) < 100:  # noqa: PLR2004 - the page size
                return out
            after = int(items[-1]["seq"])


def _stored(group_id: str, item: dict[str, Any]) -> Stored:
    return Stored(
        group_id,
        int(item["seq"]),
        str(item["id"]),
        str(item["author_id"]),
        str(item["body"]),
        str(item["client_msg_id"]),
    )


@dataclass
class Timeline:
    """The drill's moments (Unix seconds)."""

    base_backup_done: float
    newest_aof_copy: float
    newest_archived_commit: float
    recovery_point: float
    destroyed: float
    postgres_restored: float
    redis_restored: float
    nodes_ready: float
    serving_history: float
    drained: float


@dataclass
class Verdict:
    """Failures fail the drill; notes are findings that do not."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    survivors_last_ack: float = 0.0
    first_lost_ack: float | None = None


def _matches(ack: Ack, row: Stored) -> bool:
    return (row.group_id, row.seq, row.body) == (ack.group_id, ack.seq, ack.body)


class Checker:
    """Holds the history, indexed, and checks acks against it."""

    def __init__(self, history: list[Stored]) -> None:
        self.by_id: dict[str, list[Stored]] = {}
        self.by_seq: dict[tuple[str, int], list[Stored]] = {}
        for row in history:
            self.by_id.setdefault(row.message_id, []).append(row)
            self.by_seq.setdefault((row.group_id, row.seq), []).append(row)
        self.history = history
        self.verdict = Verdict()

    def check_history(self) -> None:
        """Uniqueness and gaps."""
        fail = self.verdict.failures
        for (group, seq), rows in self.by_seq.items():
            if len(rows) > 1:
                fail.append(f"duplicate seq {seq} in group {group}: {len(rows)} rows")
        for message_id, rows in self.by_id.items():
            if len(rows) > 1:
                fail.append(f"message {message_id} is in history {len(rows)} times")
        keys = Counter((r.group_id, r.author_id, r.client_msg_id) for r in self.history)
        fail.extend(f"client_msg_id {k[2]} stored {n} times" for k, n in keys.items() if n > 1)
        for group in sorted({row.group_id for row in self.history}):
            seqs = {row.seq for (g, _), rows in self.by_seq.items() if g == group for row in rows}
            missing = sorted(set(range(1, max(seqs) + 1)) - seqs)
            if missing:
                fail.append(f"group {group}: seq gap, missing {missing[:20]}")

    def check_before(self, acks: list[Ack]) -> None:
        """Acked before the recovery point: each exactly once and unchanged."""
        for ack in acks:
            rows = self.by_id.get(ack.message_id, [])
            if not rows:
                self.verdict.failures.append(f"LOST acked-before-R message {_describe(ack)}")
            elif len(rows) > 1 or not _matches(ack, rows[0]):
                self.verdict.failures.append(f"acked-before-R message changed: {_describe(ack)}")
            else:
                self._survived(ack)
        self.verdict.counts["acked before R"] = len(acks)

    def check_window(self, acks: list[Ack]) -> None:
        """Acked between the recovery point and the destruction: survived, or lost."""
        lost = [ack for ack in acks if ack.message_id not in self.by_id]
        for ack in acks:
            rows = self.by_id.get(ack.message_id, [])
            if rows and (len(rows) > 1 or not _matches(ack, rows[0])):
                self.verdict.failures.append(f"acked-after-R message changed: {_describe(ack)}")
            elif rows:
                self._survived(ack)
        reassigned = [ack for ack in lost if (ack.group_id, ack.seq) in self.by_seq]
        if lost:
            self.verdict.first_lost_ack = min(ack.acked_at for ack in lost)
        if reassigned:
            self.verdict.notes.append(
                f"{len(reassigned)} of the {len(lost)} lost acks had their seq given to another"
                " message after the restore (e.g. "
                f"{_describe(reassigned[0])} is now {self.by_seq[_key(reassigned[0])][0].body!r});"
                " clients that saw the lost message cannot tell (no epoch in the protocol)"
            )
        self.verdict.counts.update(
            {
                "acked R..destruction": len(acks),
                "acked R..destruction survived": len(acks) - len(lost),
                "acked R..destruction lost": len(lost),
                "lost seqs reassigned": len(reassigned),
            }
        )

    def check_after(self, acks: list[Ack]) -> None:
        """Acked after the restore: each exactly once; a taken seq is seq reuse."""
        for ack in acks:
            rows = self.by_id.get(ack.message_id, [])
            if len(rows) == 1 and _matches(ack, rows[0]):
                continue
            holders = self.by_seq.get(_key(ack), [])
            if not rows and holders:
                self.verdict.failures.append(
                    f"SEQ REUSE: {_describe(ack)} acked after the restore, but seq {ack.seq}"
                    f" is held in history by message {holders[0].message_id}"
                    f" ({holders[0].body!r}); the restored counter was behind PostgreSQL"
                )
            else:
                self.verdict.failures.append(f"acked-after-restore message lost: {_describe(ack)}")
        self.verdict.counts["acked after restore"] = len(acks)

    def _survived(self, ack: Ack) -> None:
        self.verdict.survivors_last_ack = max(self.verdict.survivors_last_ack, ack.acked_at)


def _key(ack: Ack) -> tuple[str, int]:
    return ack.group_id, ack.seq


def _describe(ack: Ack) -> str:
    return (
        f"group {ack.group_id[:8]} seq {ack.seq} id {ack.message_id[:8]}"
        f" acked {iso(ack.acked_at)} ({ack.body!r})"
    )


def iso(moment: float) -> str:
    """UTC ISO-8601 with milliseconds."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="milliseconds")


def check(acks: list[Ack], history: list[Stored], timeline: Timeline) -> Verdict:
    """Run every check; the verdict with counts and survivor times."""
    checker = Checker(history)
    checker.check_history()
    # Acks arrive until the old Redis is gone (a few ms after D) and again once the restored
    # one is up; none can arrive in between.
    r, restored = timeline.recovery_point, timeline.redis_restored
    checker.check_before([a for a in acks if a.acked_at < r])
    checker.check_window([a for a in acks if r <= a.acked_at < restored])
    checker.check_after([a for a in acks if a.acked_at >= restored])
    checker.verdict.counts["messages in history"] = len(history)
    return checker.verdict


def figures(verdict: Verdict, timeline: Timeline) -> list[tuple[str, str]]:
    """The printed figures: RPO and RTO as the drill measured them."""
    t = timeline
    d = t.destroyed
    lost = verdict.counts.get("acked R..destruction lost", 0)
    out = [
        ("recovery point R", iso(t.recovery_point)),
        ("destruction D", iso(d)),
        ("newest AOF copy at D", f"{iso(t.newest_aof_copy)} ({d - t.newest_aof_copy:.2f} s old)"),
        (
            "newest archived commit at D",
            f"{iso(t.newest_archived_commit)} ({d - t.newest_archived_commit:.2f} s old)",
        ),
        ("RPO bound D - R", f"{d - t.recovery_point:.2f} s"),
        ("RPO measured D - last surviving ack", f"{d - verdict.survivors_last_ack:.2f} s"),
        ("last surviving ack - R", f"{verdict.survivors_last_ack - t.recovery_point:+.3f} s"),
        ("acked messages lost (all acked after R)", str(lost)),
        ("RTO D -> nodes serving history", f"{t.serving_history - d:.2f} s"),
        ("  PostgreSQL PITR done", f"+{t.postgres_restored - d:.2f} s"),
        ("  Redis AOF restored", f"+{t.redis_restored - d:.2f} s"),
        ("  nodes ready", f"+{t.nodes_ready - d:.2f} s"),
        ("  persist stream drained (history complete)", f"+{t.drained - d:.2f} s"),
    ]
    if verdict.first_lost_ack is not None:
        out.insert(8, ("first lost ack - R", f"{verdict.first_lost_ack - t.recovery_point:+.3f} s"))
    return out
