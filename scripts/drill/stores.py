"""The drill's own PostgreSQL and Redis, their backups, and their point-in-time restores.

PostgreSQL: WAL archived segment by segment (``archive_timeout`` 1 s, 1 MiB segments) into a
folder that stands for backup storage, plus a ``pg_basebackup``; a restore copies the base
backup and replays the archive up to ``recovery_target_time`` (exclusive), then promotes.

Redis: ``appendonly yes``, ``appendfsync always`` and ``aof-timestamp-enabled yes`` (a
``#TS:<unix second>`` line before the commands of each new second), automatic AOF rewrites
off; the ``appendonlydir`` folder is copied every second. A restore takes the newest copy and
cuts it with ``redis-check-aof --truncate-to-timestamp R-1``: what is left is every command
that started before the whole second ``R``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.pg_cluster import PG_BIN, PgCluster, chown
from tests.fixtures.redis_server import OwnRedis

WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
RECOVERY_LINES = ("recovery stopping", "last completed transaction", "selected new timeline")


def _chown_tree(path: Path) -> None:
    chown(path)
    for child in path.rglob("*"):
        chown(child)


@dataclass
class ArchivedPostgres:
    """A PostgreSQL cluster whose WAL is archived, with a base backup and a PITR restore."""

    root: Path
    cluster: PgCluster = field(init=False)
    archive: Path = field(init=False)
    backup: Path = field(init=False)
    backup_done_at: float = 0.0

    def __post_init__(self) -> None:
        self.archive = self.root / "wal-archive"
        self.backup = self.root / "base-backup"

    def start(self, database: str) -> None:
        """Init, start with archiving on, and create ``database``."""
        self.archive.mkdir()
        chown(self.archive)
        self.cluster = PgCluster.init(
            self.root,
            "pgdata",
            {
                "archive_mode": "on",
                "archive_command": f"'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'",
                "archive_timeout": "1",
                "max_connections": "60",
            },
        )
        self.cluster.start()
        # The checkpointer, started while the server was still in recovery, sleeps a whole
        # checkpoint_timeout before it first looks at archive_timeout; a reload wakes it.
        self.cluster.psql("SELECT pg_reload_conf()")
        self.cluster.psql(f'CREATE DATABASE "{database}"')

    def base_backup(self) -> None:
        """An online ``pg_basebackup`` (fast checkpoint, WAL streamed alongside)."""
        self.cluster.base_backup(self.backup)
        self.backup_done_at = time.time()

    def destroy(self) -> None:
        """SIGKILL every server process and delete the data directory, ``pg_wal`` included."""
        self.cluster.kill()
        shutil.rmtree(self.cluster.datadir)

    def last_archived_commit(self) -> float:
        """Unix time of the newest COMMIT record in the archive (``pg_waldump``)."""
        segments = sorted(p for p in self.archive.iterdir() if WAL_SEGMENT.match(p.name))
        for segment in reversed(segments):
            dump = subprocess.run(  # noqa: S603 - fixed binary, our own file
                [str(PG_BIN / "pg_waldump"), str(segment)],
                capture_output=True,
                text=True,
                check=False,
                env={"TZ": "UTC", "LC_ALL": "C"},
            )
            stamps = COMMIT.findall(dump.stdout)
            if stamps:
                return dt.datetime.fromisoformat(stamps[-1] + "+00:00").timestamp()
        raise RuntimeError("the WAL archive holds no commit")

    def restore(self, target: float) -> None:
        """Base backup + archived WAL up to ``target`` (exclusive), promoted; on our port."""
        shutil.copytree(self.backup, self.cluster.datadir)
        self.cluster.datadir.chmod(0o700)
        _chown_tree(self.cluster.datadir)
        stamp = dt.datetime.fromtimestamp(target, dt.UTC).isoformat(sep=" ")
        self.cluster.configure(
            {
                "restore_command": f"'cp {self.archive}/%f %p'",
                "recovery_target_time": f"'{stamp}'",
                "recovery_target_inclusive": "off",
                "recovery_target_action": "promote",
            }
        )
        signal_file = self.cluster.datadir / "recovery.signal"
        signal_file.touch()
        chown(signal_file)
        self.cluster.start(timeout=120)
        deadline = time.monotonic() + 120
        while self.cluster.psql("SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not promote:\n{self.cluster.log()}")
            time.sleep(0.05)

    def recovery_log(self) -> list[str]:
        """What the server said about where recovery stopped."""
        return [
            line.split("] ", 1)[-1]
            for line in self.cluster.log().splitlines()
            if any(marker in line for marker in RECOVERY_LINES)
        ]


@dataclass
class AofCopy:
    """One copy of ``appendonlydir``: started at ``taken_at`` (it holds every command before)."""

    taken_at: float
    folder: Path


class CopiedRedis:
    """A Redis persisting every write, whose AOF folder a background thread copies."""

    def __init__(self, root: Path, interval_s: float) -> None:
        self.data = root / "redis-data"
        self.copies_dir = root / "aof-copies"
        self.interval_s = interval_s
        self.copies: list[AofCopy] = []
        self.server = OwnRedis(
            self.data,
            [
                "--aof-timestamp-enabled", "yes", "--auto-aof-rewrite-percentage", "0",
                "--logfile", str(root / "redis.log"),
            ],
        )  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The Redis URL of the nodes."""
        return self.server.url

    def start(self) -> None:
        """Start Redis (empty) and the copier."""
        self.data.mkdir()
        self.copies_dir.mkdir()
        self.server.start()
        self._thread = threading.Thread(target=self._copy_loop, name="aof-copier", daemon=True)
        self._thread.start()

    def stop_copier(self) -> None:
        """Stop copying (waits for a copy in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _copy_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.copy_now()

    def copy_now(self) -> AofCopy:
        """Copy the manifest, then the files it names; a copy counts once complete."""
        taken_at = time.time()
        source = self.data / "appendonlydir"
        target = self.copies_dir / f"{taken_at:.3f}"
        target.mkdir()
        manifest = source / "appendonly.aof.manifest"
        shutil.copy2(manifest, target)
        for line in (target / manifest.name).read_text().splitlines():
            name = line.split()[1]
            shutil.copy2(source / name, target / name)
        copy = AofCopy(taken_at, target)
        self.copies.append(copy)
        return copy

    def destroy(self) -> None:
        """SIGKILL Redis and delete its data directory."""
        self.server.kill()
        shutil.rmtree(self.data)

    def restore(self, copy: AofCopy, recovery_point: int) -> str:
        """Cut ``copy`` before the second ``recovery_point``, load it; the checker's verdict."""
        staged = self.copies_dir / "restore"
        shutil.copytree(copy.folder, staged)
        check = subprocess.run(  # noqa: S603 - fixed binary, our own file
            [
                shutil.which("redis-check-aof") or "/usr/bin/redis-check-aof",
                "--truncate-to-timestamp", str(recovery_point - 1),
                str(staged / "appendonly.aof.manifest"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"redis-check-aof failed: {check.stdout}{check.stderr}")
        self.data.mkdir()
        shutil.move(staged, self.data / "appendonlydir")
        self.server.start()
        verdict = [line for line in check.stdout.splitlines() if "truncat" in line.lower()]
        return "; ".join(verdict) or check.stdout.strip().splitlines()[-1]

    def newest_copy(self) -> AofCopy:
        """The newest complete copy."""
        if not self.copies:
            raise RuntimeError("no AOF copy was taken")
        return self.copies[-1]
