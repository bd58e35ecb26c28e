"""Whether the database holds the schema this code needs: alembic's revision, read back.

A node started on a database its release step never migrated (or migrated to an older
revision) answered every request with a 500 while ``/health/ready`` said ready. A revision
newer than this code knows is fine: migrations are expand-then-contract, so the previous
release runs on the next one's schema during a rolling deploy or a code rollback.
"""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from server.store.db import Database

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code's (or was never created)."""


class SchemaCheck:
    """A readiness check: the database's revision is this code's head, or newer."""

    def __init__(self, db: Database, migrations: Path = MIGRATIONS) -> None:
        self._db = db
        self._head: str | None = None
        self._known: frozenset[str] = frozenset()
        if (migrations / "env.py").exists():  # shipped without migrations: nothing to compare
            script = ScriptDirectory(str(migrations))
            self._head = script.get_current_head()
            self._known = frozenset(item.revision for item in script.walk_revisions())

    async def __call__(self) -> None:
        """Raise :class:`SchemaBehind` unless the schema is at least this code's head.

        Raises:
            SchemaBehind: an older revision.
            Exception: the revision cannot be read (no ``alembic_version``: never migrated).
        """
        if self._head is None:
            return
        found = await self._db.revision()
        if found in self._known and found != self._head:
            raise SchemaBehind(f"the schema is at {found}; this code needs {self._head}")
        if found is None:
            raise SchemaBehind("the database was never migrated")
