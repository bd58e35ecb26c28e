"""The I/O-free parts of read replicas: LSN arithmetic, the lag clock, the rotation."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from server.cache import MemoryCache
from server.settings import Settings, SettingsError
from server.store.db import replica_name
from server.store.replicas import (
    LagClock,
    Replica,
    ReplicaSet,
    ReplicaState,
    format_lsn,
    parse_lsn,
)


@pytest.mark.parametrize(
    ("text", "position"),
    [("0/0", 0), ("0/3000060", 0x3000060), ("16/B374D848", (0x16 << 32) + 0xB374D848)],
)
def test_an_lsn_is_a_byte_position_and_back(text: str, position: int) -> None:
    assert parse_lsn(text) == position
    assert format_lsn(position) == text


def test_lag_is_the_age_of_the_oldest_unreplayed_primary_position() -> None:
    """Caught up: 0. Stuck at a position: the time since the primary first passed it."""
    clock = LagClock()
    assert clock.observe(10.0, primary=100, replayed=100) == 0.0
    assert clock.observe(11.0, primary=150, replayed=100) == 0.0  # behind since this check
    assert clock.observe(12.0, primary=180, replayed=100) == 1.0
    assert clock.observe(13.5, primary=200, replayed=150) == 1.5  # 150 reached, 180 not
    assert clock.observe(14.0, primary=200, replayed=200) == 0.0


def test_an_idle_primary_does_not_look_like_lag() -> None:
    """No commits for an hour, the replica caught up: the lag stays 0."""
    clock = LagClock()
    for minute in range(60):
        assert clock.observe(minute * 60.0, primary=500, replayed=500) == 0.0


def _replicas(*states: ReplicaState) -> ReplicaSet:
    engine = create_async_engine("postgresql+asyncpg://u@127.0.0.1:1/db")
    replicas = [Replica(f"r{i}", engine, state=state) for i, state in enumerate(states)]
    return ReplicaSet(replicas, MemoryCache(), max_lag_s=10, wait_s=0.05)


def test_healthy_replicas_take_turns() -> None:
    replicas = _replicas(ReplicaState.OK, ReplicaState.OK, ReplicaState.OK)
    firsts = [replicas.rotation()[0].name for _ in range(6)]
    assert firsts == ["r1", "r2", "r0", "r1", "r2", "r0"]
    assert sorted(r.name for r in replicas.rotation()) == ["r0", "r1", "r2"]


def test_lagging_and_down_replicas_are_out_of_rotation() -> None:
    replicas = _replicas(ReplicaState.DOWN, ReplicaState.OK, ReplicaState.LAGGING)
    assert [r.name for r in replicas.rotation()] == ["r1"]
    replicas.replicas[1].set_down("gone")
    assert replicas.rotation() == []
    assert replicas.report()["r1"] == {"state": "down", "lag_seconds": 0.0, "lag_bytes": 0}


def test_a_replica_is_named_without_its_credentials() -> None:
    name = replica_name("postgresql://app:s3cret@db-replica.internal:6432/studybuddy")
    assert name == "db-replica.internal:6432/studybuddy"
    assert replica_name("postgresql://app@10.0.0.5/studybuddy") == "10.0.0.5:5432/studybuddy"


@pytest.mark.parametrize(
    "environ",
    [
        {"DATABASE_REPLICA_URLS": "postgresql://r@127.0.0.1/db"},
        {
            "DATABASE_URL": "postgresql://p@127.0.0.1/db",
            "DATABASE_REPLICA_URLS": "sqlite:///replica.db",
        },
    ],
)
def test_replicas_need_postgresql_on_both_sides(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URLS"):
        Settings.from_env(environ)


def test_replica_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://p@127.0.0.1/db",
            "DATABASE_REPLICA_URLS": "postgresql://r@10.0.0.2/db, postgresql://r@10.0.0.3/db",
            "DATABASE_REPLICA_MAX_LAG_S": "5",
            "DATABASE_REPLICA_WAIT_S": "0.1",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql://r@10.0.0.2/db",
        "postgresql://r@10.0.0.3/db",
    )
    assert settings.database_replica_max_lag_s == 5.0
    assert settings.database_replica_wait_s == 0.1
