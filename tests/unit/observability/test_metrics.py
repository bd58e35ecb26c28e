"""Prometheus metrics: exposition, multiprocess mode, and SQL statement timing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from server.observability import metrics


class _Connection:
    """The part of a SQLAlchemy connection the timing hooks use."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}


def _query_count(operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "studybuddy_db_query_duration_seconds_count", {"operation": operation}
    )
    return value or 0.0


def test_render_latest_exposes_the_process_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """In single-process mode the default registry is rendered as Prometheus text."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.GROUPS_CREATED.inc()
    body, content_type = metrics.render_latest()
    assert content_type == CONTENT_TYPE_LATEST
    assert b"# TYPE studybuddy_study_groups_created_total counter" in body
    assert b"studybuddy_ws_connections" in body


def test_render_latest_merges_worker_files_in_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, only the directory's files are merged (none here)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    body, content_type = metrics.render_latest()
    assert content_type == CONTENT_TYPE_LATEST
    assert b"studybuddy_study_groups_created_total" not in body


def test_mark_process_dead_removes_live_gauge_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In multiprocess mode a dead worker's livesum gauge file is deleted; others stay."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = tmp_path / "gauge_livesum_4242.db"
    alive = tmp_path / "gauge_livesum_4243.db"
    dead.write_bytes(b"")
    alive.write_bytes(b"")
    metrics.mark_process_dead(4242)
    assert not dead.exists()
    assert alive.exists()


def test_mark_process_dead_defaults_to_this_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a pid the current process is marked dead."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    mine.write_bytes(b"")
    metrics.mark_process_dead()
    assert not mine.exists()


def test_mark_process_dead_is_a_no_op_in_single_process_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR nothing is touched."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.mark_process_dead(1)
    assert list(tmp_path.iterdir()) == []


async def test_instrument_engine_registers_the_timing_hooks() -> None:
    """The engine's cursor events get the before/after listeners (no connection is made)."""
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        metrics.instrument_engine(engine)
        sync_engine = engine.sync_engine
        assert event.contains(sync_engine, "before_cursor_execute", metrics._before_execute)
        assert event.contains(sync_engine, "after_cursor_execute", metrics._after_execute)
    finally:
        await engine.dispose()


def test_statement_duration_is_recorded_by_kind() -> None:
    """A timed statement is counted under its first keyword, upper-cased."""
    connection = _Connection()
    before = _query_count("SELECT")
    metrics._before_execute(connection, None, "select 1", (), None, False)
    metrics._after_execute(connection, None, "  select 1", (), None, False)
    assert _query_count("SELECT") == before + 1
    assert connection.info["query_start"] == []


def test_blank_statement_is_counted_as_other() -> None:
    """A statement with no keyword is labelled OTHER."""
    connection = _Connection()
    before = _query_count("OTHER")
    metrics._before_execute(connection)
    metrics._after_execute(connection, None, "   ")
    assert _query_count("OTHER") == before + 1


def test_long_keywords_are_cut_to_sixteen_characters() -> None:
    """The operation label is bounded, so odd SQL cannot blow up label cardinality."""
    connection = _Connection()
    keyword = "X" * 40
    metrics._before_execute(connection)
    metrics._after_execute(connection, None, f"{keyword} foo")
    assert _query_count("X" * 16) >= 1
    assert (
        REGISTRY.get_sample_value(
            "studybuddy_db_query_duration_seconds_count", {"operation": keyword}
        )
        is None
    )


def test_nested_statements_are_timed_last_in_first_out() -> None:
    """Start times are a stack, so a statement inside another is paired correctly."""
    connection = _Connection()
    metrics._before_execute(connection)
    metrics._before_execute(connection)
    metrics._after_execute(connection, None, "UPDATE t")
    assert len(connection.info["query_start"]) == 1
    metrics._after_execute(connection, None, "INSERT t")
    assert connection.info["query_start"] == []
