"""The migration chain runs on PostgreSQL and SQLite and matches the models."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.fixtures.services import ROOT, fresh_database


def _config(url: str) -> Config:
    config = Config(str(Path(ROOT) / "alembic.ini"))
    config.set_main_option("script_location", str(Path(ROOT) / "migrations"))
    config.attributes["url"] = url
    return config


def _check(url: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        command.check(_config(url))


def test_file_names_follow_timestamp_action_table() -> None:
    """Every migration is named {timestamp}_{action}_{table}.py and the chain is linear."""
    names = sorted(p.name for p in (Path(ROOT) / "migrations" / "versions").glob("*.py"))
    assert names
    for name in names:
        stamp, _, rest = name.partition("_")
        assert len(stamp) == 14 and stamp.isdigit(), name
        assert rest.split("_")[0] in {"create", "add", "drop", "alter", "rename"}, name
    assert len(ScriptDirectory.from_config(_config("sqlite://")).get_heads()) == 1


async def test_postgres_upgrade_matches_models_and_round_trips() -> None:
    """On PostgreSQL: upgrade, no drift from the models, downgrade to base, upgrade again."""
    async with fresh_database("sbmig") as url:
        await asyncio.to_thread(_check, url)
        await asyncio.to_thread(command.downgrade, _config(url), "base")
        await asyncio.to_thread(command.upgrade, _config(url), "head")
        await asyncio.to_thread(_check, url)


def test_sqlite_upgrade_matches_models_and_round_trips(tmp_path: Path) -> None:
    """On SQLite: the same files, the same result."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(_config(url), "head")
    _check(url)
    command.downgrade(_config(url), "base")
    command.upgrade(_config(url), "head")
