"""Translate infrastructure failures (database, Redis) into ``SERVICE_UNAVAILABLE`` once."""

from __future__ import annotations

from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from server.errors import ServiceUnavailable
from server.redis_client import LIBRARY_RACES

_DB_ERRORS = (sa_errors.OperationalError, sa_errors.InterfaceError, sa_errors.TimeoutError)
REFUSING = ("08", "53", "57")
"""SQLSTATE classes of a PostgreSQL that cannot serve now: connection exception, insufficient
resources (too many connections), operator intervention (shutting down, starting up)."""
QUERY_CANCELED = "57014"
"""Class 57 too, but a statement timeout or a cancelled query: about the work, not an outage."""
NOT_ACCEPTING = "55000"
"""What a new connection meets while the database does not accept connections
(``ALLOW_CONNECTIONS false``, as during maintenance)."""
_REDIS_ERRORS = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterError,  # a cluster in flux: no primary for a slot, TTL exhausted
    redis_errors.TryAgainError,
    redis_errors.AskError,
    redis_errors.SlotNotCoveredError,
)


def as_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """Return the client-facing error for an infrastructure failure, or None if it is not one."""
    if isinstance(exc, _REDIS_ERRORS) or _closed_under_a_command(exc):
        return ServiceUnavailable("Redis is unavailable; try again shortly")
    if isinstance(exc, _DB_ERRORS) or (
        isinstance(exc, sa_errors.DBAPIError) and (exc.connection_invalidated or _refused(exc))
    ):
        return ServiceUnavailable("The database is unavailable; try again shortly")
    if isinstance(exc, sa_errors.DBAPIError) and _stale_plan(exc):
        return ServiceUnavailable("The database schema just changed; try again")
    if isinstance(exc, OSError | TimeoutError):
        return ServiceUnavailable("A backing service is unreachable; try again shortly")
    return None


def _closed_under_a_command(exc: BaseException) -> bool:
    """Whether ``exc`` is redis-py's error for a connection it closed under a command.

    A failover's slot-map refresh closes connections in use; the error, raised in redis-py's
    code and left after the client's retries, is an outage, not a bug of ours.
    """
    trace = exc.__traceback__
    if not isinstance(exc, LIBRARY_RACES) or trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    return str(trace.tb_frame.f_globals.get("__name__", "")).startswith("redis.")


def sqlstate(exc: sa_errors.DBAPIError) -> str | None:
    """The SQLSTATE PostgreSQL answered with (asyncpg's, as SQLAlchemy carries it), if any."""
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _refused(exc: sa_errors.DBAPIError) -> bool:
    """PostgreSQL refused the connection or the work for its own state (see :data:`REFUSING`)."""
    state = sqlstate(exc)
    if state is None or state == QUERY_CANCELED:
        return False
    return state[:2] in REFUSING or state == NOT_ACCEPTING


def _stale_plan(exc: sa_errors.DBAPIError) -> bool:
    """A migration altered a table under a cached statement (asyncpg); a retry succeeds.

    SQLAlchemy drops the connection's statement cache when this happens, so the request
    that met it is the only one to fail.
    """
    return type(exc.orig).__name__ == "InvalidCachedStatementError"
