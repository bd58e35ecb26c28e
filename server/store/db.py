"""The database engine and session factory, created by the app lifespan."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.observability.metrics import instrument_engine

_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """Return ``url`` with the async driver of its backend (asyncpg or aiosqlite)."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        return url
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Database:
    """An engine and its session factory. Services open transactions on it."""

    def __init__(self, engine: AsyncEngine, warm: int = 0) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._warm = warm

    @property
    def dialect(self) -> str:
        """The backend's name: ``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        """Open a new session (use as ``async with db.session() as s, s.begin():``)."""
        return self.sessions()

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def warm(self) -> None:
        """Open the pool's first connections now, not during the first burst of requests."""
        if self._warm <= 1:
            return
        with contextlib.suppress(Exception):  # the database may be down: readiness says so
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(self._warm):
                    await stack.enter_async_context(self.engine.connect())

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def create_database(url: str, *, pool_min: int, pool_max: int, echo: bool = False) -> Database:
    """Build the engine for ``url``: a bounded pool on PostgreSQL, WAL and FKs on SQLite.

    ``pool_min`` connections are opened at start (:meth:`Database.warm`), up to ``pool_max``
    as load asks, and kept.
    """
    url = async_url(url)
    # No pre-ping: it costs a round trip (BEGIN; ROLLBACK) before every session's first query.
    # A connection that died with the server fails its first query instead: SQLAlchemy sees
    # the disconnect, invalidates the whole pool, and the request answers 503 once.
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
    if url.startswith("postgresql"):
        kwargs |= {
            # Connections opened under load stay open (no overflow opened and closed again
            # per burst: a reconnect storm would pay a connection set-up per request).
            "pool_size": max(pool_min, pool_max),
            "max_overflow": 0,
            "pool_timeout": 5,
            "connect_args": {"timeout": 5, "command_timeout": 30},
        }
    else:
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    instrument_engine(engine)
    return Database(engine, warm=pool_min if url.startswith("postgresql") else 0)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
