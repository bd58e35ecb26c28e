"""The database: the primary's engine and session factory, and its read replicas.

Created by the app lifespan. Writes, and reads that must be current, use :meth:`Database.session`
(the primary); reads that tolerate lag ask :meth:`Database.read_session` explicitly, which
serves them from a replica when one is configured and fit (see :mod:`server.store.replicas`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.observability.metrics import instrument_engine
from server.security.sanitize import search_form
from server.store.replicas import Replica, ReplicaSet, WriteMarks

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
    """The primary's engine and session factory, and the replicas. Services open sessions."""

    def __init__(
        self, engine: AsyncEngine, warm: int = 0, replicas: ReplicaSet | None = None
    ) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._warm = warm
        self.replicas = replicas

    @property
    def dialect(self) -> str:
        """The backend's name: ``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        """Open a session on the primary (``async with db.session() as s, s.begin():``)."""
        return self.sessions()

    @asynccontextmanager
    async def read_session(self, *, for_user: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
        """A session for a read that tolerates lag: on a replica when one is fit, else the primary.

        Never write in it. ``for_user`` is the reader: when they wrote recently, a replica
        serves them only once it has replayed their last write.
        """
        opened = await self.replicas.open(for_user) if self.replicas else None
        if opened is None:
            async with self.sessions() as session:
                yield session
            return
        session, replica = opened
        async with session:
            try:
                yield session
            except Exception as exc:
                if _connection_lost(exc):
                    replica.set_down(exc)
                raise

    async def wrote(self, *users: uuid.UUID) -> None:
        """Record that ``users`` just wrote (after the commit), so that they read it back.

        A no-op without replicas; never raises.
        """
        if self.replicas is not None:
            await self.replicas.wrote(self.engine, users)

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def revision(self) -> str | None:
        """Alembic's revision of the schema; raises if it was never migrated."""
        async with self.engine.connect() as conn:
            found = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return None if found is None else str(found)

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
        if self.replicas is not None:
            await self.replicas.dispose()


def create_database(
    url: str,
    *,
    pool_min: int,
    pool_max: int,
    echo: bool = False,
    replica_urls: Sequence[str] = (),
    marks: WriteMarks | None = None,
    max_lag_s: float = 10.0,
    wait_s: float = 0.05,
) -> Database:
    """Build the engine for ``url``: a bounded pool on PostgreSQL, WAL and FKs on SQLite.

    ``pool_min`` connections are opened at start (:meth:`Database.warm`), up to ``pool_max``
    as load asks, and kept. With ``replica_urls`` (PostgreSQL only), an engine per replica
    and ``marks`` to keep users' write positions in.
    """
    primary = _engine(url, pool_max=pool_max, echo=echo)
    # DB_POOL_MAX is the bound operators size max_connections by: a minimum above it is cut.
    warm = min(pool_min, pool_max) if primary.dialect.name == "postgresql" else 0
    if not replica_urls:
        return Database(primary, warm)
    if marks is None:
        raise ValueError("read replicas need somewhere to keep users' write positions")
    replicas = [
        Replica(
            replica_name(replica_url),
            _engine(
                replica_url,
                pool_max=pool_max,
                echo=echo,
                timeout_s=2,
                pre_ping=True,
            ),
        )
        for replica_url in replica_urls
    ]
    return Database(primary, warm, ReplicaSet(replicas, marks, max_lag_s=max_lag_s, wait_s=wait_s))


def replica_name(url: str) -> str:
    """How a replica is named in metrics, logs and readiness: ``host:port/database``."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, OSError)


def _engine(
    url: str,
    *,
    pool_max: int,
    echo: bool,
    timeout_s: float = 5,
    pre_ping: bool = False,
) -> AsyncEngine:
    url = async_url(url)
    # The primary has no pre-ping: it costs a round trip (BEGIN; ROLLBACK) before every
    # session's first query. A connection that died with the server fails its first query
    # instead: SQLAlchemy sees the disconnect, invalidates the whole pool, and the request
    # answers 503 once. A replica pays the round trip: a read that finds its replica gone
    # at check-out goes to the primary instead of failing (ADR 0017).
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": pre_ping}
    if url.startswith("postgresql"):
        kwargs |= {
            # Connections opened under load stay open (no overflow opened and closed again
            # per burst: a reconnect storm would pay a connection set-up per request).
            "pool_size": pool_max,
            "max_overflow": 0,
            "pool_timeout": 5,
            "connect_args": {"timeout": timeout_s, "command_timeout": 30},
        }
    else:
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    instrument_engine(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    dbapi_connection.create_function("sb_search_text", 1, _search_text, deterministic=True)


def _search_text(value: str | None) -> str | None:
    """``sb_search_text`` on SQLite (PostgreSQL's is a SQL function from a migration)."""
    return None if value is None else search_form(value)
