"""Infrastructure failures become SERVICE_UNAVAILABLE; everything else is left alone."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors
from redis.asyncio.connection import Connection
from sqlalchemy import exc as sa_errors

from server.errors import ServiceUnavailable
from server.infra import as_unavailable

REDIS_DOWN = "Redis is unavailable; try again shortly"
DB_DOWN = "The database is unavailable; try again shortly"
BACKEND_DOWN = "A backing service is unreachable; try again shortly"


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.ConnectionError("refused"),
        redis_errors.TimeoutError("slow"),
        redis_errors.BusyLoadingError("loading"),
    ],
    ids=["connection", "timeout", "loading"],
)
def test_redis_outages_are_unavailable(error: Exception) -> None:
    """Redis connection trouble names Redis."""
    translated = as_unavailable(error)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == REDIS_DOWN


@pytest.mark.parametrize(
    "error",
    [
        sa_errors.OperationalError("stmt", {}, Exception("x")),
        sa_errors.InterfaceError("stmt", {}, Exception("x")),
        sa_errors.TimeoutError("QueuePool limit reached"),
        sa_errors.DBAPIError("stmt", {}, Exception("x"), connection_invalidated=True),
    ],
    ids=["operational", "interface", "pool-timeout", "invalidated"],
)
def test_database_outages_are_unavailable(error: Exception) -> None:
    """Lost connections and pool exhaustion name the database."""
    translated = as_unavailable(error)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == DB_DOWN


class _Refusal(Exception):
    """An asyncpg error as SQLAlchemy's adapter carries it: with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["57P03", "57P01", "53300", "08006", "55000"])
def test_a_postgresql_that_refuses_for_its_state_is_unavailable(sqlstate: str) -> None:
    """Starting up, shutting down, full, cut off, not accepting connections: the database."""
    translated = as_unavailable(sa_errors.DBAPIError("stmt", {}, _Refusal(sqlstate)))
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == DB_DOWN


@pytest.mark.parametrize("sqlstate", ["22021", "23505", "42P01", "55P03", None])
def test_a_postgresql_error_about_the_work_is_not_an_outage(sqlstate: str | None) -> None:
    """Bad data, a duplicate, a missing table, a lock timeout: not SERVICE_UNAVAILABLE."""
    error = _Refusal(sqlstate) if sqlstate else Exception("x")
    assert as_unavailable(sa_errors.DBAPIError("stmt", {}, error)) is None


@pytest.mark.parametrize(
    "error",
    [OSError("network down"), ConnectionRefusedError(), TimeoutError()],
    ids=["oserror", "refused", "timeout"],
)
def test_socket_errors_are_unavailable(error: Exception) -> None:
    """Plain socket failures are a generic backing-service outage."""
    translated = as_unavailable(error)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == BACKEND_DOWN


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        KeyError("k"),
        redis_errors.ResponseError("WRONGTYPE"),
        sa_errors.IntegrityError("stmt", {}, Exception("duplicate key")),
        sa_errors.DBAPIError("stmt", {}, Exception("x"), connection_invalidated=False),
    ],
    ids=["value", "key", "redis-response", "integrity", "dbapi-valid-connection"],
)
def test_other_errors_are_not_translated(error: Exception) -> None:
    """Bugs and data errors are not outages: None, so they surface as they are."""
    assert as_unavailable(error) is None


async def test_a_connection_closed_under_a_command_by_redis_py_is_unavailable() -> None:
    """redis-py's AttributeError for a writer it closed under a command names Redis."""
    with pytest.raises(AttributeError) as raised:
        await Connection()._send_packed_command([b"PING"])  # never connected: no writer
    translated = as_unavailable(raised.value)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == REDIS_DOWN


def test_an_attribute_error_of_our_own_is_a_bug() -> None:
    """The same error type raised outside redis-py is not translated."""
    with pytest.raises(AttributeError) as raised:
        _ = None.writelines  # type: ignore[attr-defined]
    assert as_unavailable(raised.value) is None
    assert as_unavailable(AttributeError("never raised")) is None


class InvalidCachedStatementError(Exception):
    """Named as asyncpg's error for a plan a migration made stale."""


def test_a_plan_made_stale_by_a_migration_is_a_retry() -> None:
    """A table altered under a cached statement: 503 (retry), not a 500."""
    error = sa_errors.NotSupportedError("SELECT 1", {}, InvalidCachedStatementError("stale"))
    translated = as_unavailable(error)
    assert isinstance(translated, ServiceUnavailable)
    assert translated.message == "The database schema just changed; try again"
    assert as_unavailable(sa_errors.NotSupportedError("SELECT 1", {}, ValueError("x"))) is None
