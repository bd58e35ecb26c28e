"""Prometheus metrics.

Metric objects are process-wide (they hold counters, not connections). With several worker
processes set ``PROMETHEUS_MULTIPROC_DIR``: gauges aggregate with ``livesum``/``max`` and the
metrics endpoint merges every process's files.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "studybuddy_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "endpoint", "status"],
)
HTTP_DURATION = Histogram(
    "studybuddy_http_request_duration_seconds",
    "HTTP request latency, by method and route template.",
    ["method", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
HTTP_ERRORS = Counter(
    "studybuddy_http_errors_total",
    "HTTP error responses, by error code.",
    ["code"],
)
DB_QUERY_DURATION = Histogram(
    "studybuddy_db_query_duration_seconds",
    "SQL statement latency, by statement kind.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
WS_CONNECTIONS = Gauge(
    "studybuddy_ws_connections",
    "Open WebSocket connections.",
    multiprocess_mode="livesum",
)
WS_FRAMES = Counter(
    "studybuddy_ws_frames_total",
    "WebSocket frames, by direction (in/out) and frame type.",
    ["direction", "type"],
)
DAILY_ACTIVE_USERS = Gauge(
    "studybuddy_daily_active_users",
    "Distinct users seen since midnight UTC.",
    multiprocess_mode="max",
)
GROUPS_CREATED = Counter(
    "studybuddy_study_groups_created_total",
    "Study groups created.",
)


FANOUT_LATENCY = Histogram(
    "studybuddy_fanout_latency_seconds",
    "From the append (message created) to the frame being written to a socket.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
QUEUE_DROPS = Counter(
    "studybuddy_ws_queue_drops_total",
    "Ephemeral frames (typing, presence) dropped because a socket's queue was full.",
)
SLOW_CONSUMER_CLOSES = Counter(
    "studybuddy_ws_slow_consumer_closes_total",
    "Sockets closed with 4010 because their queue overflowed.",
)
PERSISTER_BATCHES = Counter(
    "studybuddy_persister_batches_total",
    "Message batches written to the database.",
)
PERSISTER_REFUSED = Counter(
    "studybuddy_persister_refused_total",
    "Acked messages the database refused to store, set aside so the rest flows (an error).",
)
PERSISTER_LAG_SECONDS = Histogram(
    "studybuddy_persister_lag_seconds",
    "Age of the oldest message of a batch when it was written.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PERSISTER_PENDING = Gauge(
    "studybuddy_persister_pending",
    "Messages logged but not yet in the database.",
    multiprocess_mode="max",
)
PERSISTER_PARTITIONS = Gauge(
    "studybuddy_persister_partitions_held",
    "Partitions of the persistence log this node drains (its leases).",
    multiprocess_mode="liveall",
)
PERSISTER_OLDEST_AGE = Gauge(
    "studybuddy_persister_oldest_pending_seconds",
    "Age of the oldest message not yet in the database.",
    multiprocess_mode="max",
)
EMAILS_SENT = Counter(
    "studybuddy_emails_sent_total",
    "Emails handed to SMTP or written to MAIL_DIR, by kind and result (sent, error).",
    ["kind", "result"],
)
NOTIFICATIONS = Counter(
    "studybuddy_notifications_total",
    "Notifications created, by kind.",
    ["kind"],
)
RETENTION_PURGED = Counter(
    "studybuddy_retention_purged_total",
    "Rows deleted by the retention purge, by kind.",
    ["kind"],
)
ERASURE_FOLLOW_UPS = Counter(
    "studybuddy_erasure_follow_ups_total",
    "Attempts to reach an erased account's copies outside the database, by result (done, retry).",
    ["result"],
)
TASK_RUNS = Counter(
    "studybuddy_task_runs_total",
    "Background job runs, by task and result (ok, retried, dead).",
    ["task", "result"],
)
TASK_DURATION = Histogram(
    "studybuddy_task_duration_seconds",
    "Background job run time, by task (each attempt).",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DEAD_LETTERS = Gauge(
    "studybuddy_dead_letters",
    "Jobs that failed every attempt and were not replayed yet (python -m server.admin dlq).",
    multiprocess_mode="max",
)

REPLICA_LAG_SECONDS = Gauge(
    "studybuddy_db_replica_lag_seconds",
    "How long ago the primary was at the oldest position a read replica has not replayed.",
    ["replica"],
    multiprocess_mode="max",
)
REPLICA_LAG_BYTES = Gauge(
    "studybuddy_db_replica_lag_bytes",
    "WAL bytes between the primary's position and a read replica's replay position.",
    ["replica"],
    multiprocess_mode="max",
)
REPLICA_UP = Gauge(
    "studybuddy_db_replica_up",
    "1 while a read replica answers its checks, 0 when it does not.",
    ["replica"],
    multiprocess_mode="min",
)
REPLICA_READS = Counter(
    "studybuddy_db_read_sessions_total",
    "Lag-tolerant read sessions, by target (replica, primary) and why (ok, behind, ...).",
    ["target", "reason"],
)


class FrameTally:
    """Socket frame counts, kept in a plain dict on the hot path.

    :meth:`flush` moves them to ``studybuddy_ws_frames_total`` in a batch (the hub does so
    every few seconds).
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, direction: str, frame_type: str, n: int = 1) -> None:
        """Count ``n`` frames."""
        key = (direction, frame_type)
        self.counts[key] = self.counts.get(key, 0) + n

    def flush(self) -> None:
        """Publish and reset the counts."""
        counts, self.counts = self.counts, {}
        for (direction, frame_type), n in counts.items():
            WS_FRAMES.labels(direction, frame_type).inc(n)


FRAMES = FrameTally()
"""This process's frame tally."""


def render_latest() -> tuple[bytes, str]:
    """Return the exposition text and its content type, merging worker processes if needed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished process's live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def instrument_engine(engine: AsyncEngine) -> None:
    """Record every statement's duration in ``studybuddy_db_query_duration_seconds``."""
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _before_execute)
    event.listen(sync_engine, "after_cursor_execute", _after_execute)


def _before_execute(conn: Any, *_args: Any) -> None:
    conn.info.setdefault("query_start", []).append(time.perf_counter())


def _after_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    started = conn.info["query_start"].pop()
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "OTHER"
    DB_QUERY_DURATION.labels(operation=operation[:16]).observe(time.perf_counter() - started)
