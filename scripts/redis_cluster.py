"""A local Redis Cluster (3 primaries + 3 replicas) that tests, load tests and developers share.

Every node is a ``redis-server`` in cluster mode on a loopback port (default 7000-7005, bus
ports +10000), persisting with ``appendonly yes`` and ``appendfsync always`` in its own data
directory under one folder, with a short ``cluster-node-timeout`` (2000 ms) so a killed primary
fails over within a few seconds. From Python::

    cluster = LocalCluster(Path(".cluster"), base_port=7000).start()
    port = cluster.owner_of("{p3}seq:group")    # the primary serving that key's slot
    cluster.kill(port)                          # SIGKILL
    new_port = cluster.wait_failover(port)      # its replica promoted, cluster ok
    cluster.restart(port)                       # rejoins as a replica
    cluster.migrate_slot(1234, new_port)        # IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE
    cluster.stop()

From the command line (``make cluster``, ``make cluster-stop``)::

    python -m scripts.redis_cluster start --folder .cluster --base-port 7000
    python -m scripts.redis_cluster status|stop|kill PORT|restart PORT|owner KEY|migrate SLOT PORT
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

HOST = "127.0.0.1"
BUS_OFFSET = 10000
DEFAULT_BASE_PORT = 7000
DEFAULT_NODE_TIMEOUT_MS = 2000
POLL_S = 0.05
SlotRanges = tuple[tuple[int, int], ...]


class ClusterError(RuntimeError):
    """The local cluster could not be started, changed or observed as asked."""


def slot_of(key: str | bytes) -> int:
    """The hash slot of ``key`` (CRC16 of its hash tag, modulo 16384)."""
    return key_slot(key.encode() if isinstance(key, str) else key)


def split_slots(primaries: int) -> list[tuple[int, int]]:
    """Contiguous, even slot ranges for ``primaries`` primaries (as ``redis-cli`` splits them)."""
    bounds = [round(i * REDIS_CLUSTER_HASH_SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def port_in_use(port: int) -> bool:
    """Whether something listens on ``127.0.0.1:port`` (checked as Redis binds: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def free_base_port(count: int = 6, low: int = 20000, high: int = 30000) -> int:
    """A base port such that ``count`` ports from it, and their bus ports, are all free."""
    rng = random.Random()  # noqa: S311 - not for security
    for _ in range(200):
        base = rng.randrange(low, high - count)
        ports = range(base, base + count)
        if not any(port_in_use(p) or port_in_use(p + BUS_OFFSET) for p in ports):
            return base
    raise ClusterError(f"no block of {count} free ports found in {low}-{high}")


@dataclass(frozen=True)
class NodeView:
    """One row of ``CLUSTER NODES``: what one node believes about a node."""

    node_id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    link: str
    slots: SlotRanges

    @property
    def is_primary(self) -> bool:
        """Flagged ``master``."""
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        """Flagged ``fail`` or ``fail?``."""
        return bool(self.flags & {"fail", "fail?"})

    @property
    def myself(self) -> bool:
        """The row of the node that answered."""
        return "myself" in self.flags

    def owns(self, slot: int) -> bool:
        """Whether ``slot`` is in one of its ranges."""
        return any(low <= slot <= high for low, high in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeView]:
    """Parse the text ``CLUSTER NODES`` returns."""
    views = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:  # noqa: PLR2004 - the fixed columns
            continue
        address = parts[1].split("@", 1)[0]
        views.append(
            NodeView(
                node_id=parts[0],
                port=int(address.rsplit(":", 1)[1] or 0),
                flags=frozenset(parts[2].split(",")),
                primary_id=None if parts[3] == "-" else parts[3],
                link=parts[7],
                slots=_slot_ranges(parts[8:]),
            )
        )
    return views


def _slot_ranges(tokens: Sequence[str]) -> SlotRanges:
    ranges = []
    for token in tokens:
        if token.startswith("["):  # [slot->-id] / [slot-<-id]: a migration in progress
            continue
        low, _, high = token.partition("-")
        ranges.append((int(low), int(high or low)))
    return tuple(ranges)


def _format_ranges(ranges: SlotRanges) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) or "-"


@dataclass
class Node:
    """One ``redis-server`` of the cluster and its data directory."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        """Where Redis writes its pid."""
        return self.folder / "redis.pid"

    @property
    def logfile(self) -> Path:
        """Redis's own log."""
        return self.folder / "redis.log"

    @property
    def conf(self) -> Path:
        """The cluster state Redis keeps (``nodes.conf``)."""
        return self.folder / "nodes.conf"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain (non-cluster) client of this node alone."""
        return redis.Redis(
            host=HOST,
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            encoding_errors="surrogateescape",  # binary keys survive GETKEYSINSLOT/MIGRATE
        )

    def command(self, *args: Any) -> Any:
        """Run one command on this node."""
        with self.client() as client:
            return client.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        """``INFO <section>`` as a dict."""
        with self.client() as client:
            return dict(client.info(section))

    def views(self) -> list[NodeView]:
        """``CLUSTER NODES`` as this node sees it."""
        return parse_cluster_nodes(str(self.command("CLUSTER", "NODES")))

    def me(self) -> NodeView:
        """This node's own row."""
        return next(view for view in self.views() if view.myself)

    def pid(self) -> int | None:
        """The live process id (from the process we started, or the verified pid file)."""
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"redis-server" in cmdline and b":%d" % self.port in cmdline else None

    def alive(self) -> bool:
        """Whether the process runs."""
        return self.pid() is not None

    def launch(self, options: Mapping[str, str], *, detach: bool) -> None:
        """Start ``redis-server`` with ``options`` (its stdout/stderr go to ``stdout.log``)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [binary]
        for name, value in options.items():
            args += [f"--{name}", value]
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "stdout.log").open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=detach
            )

    def wait_answering(self, timeout: float) -> None:
        """Wait until the node answers PING (after loading its AOF)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ClusterError(f"redis-server on port {self.port} exited:\n{self.log_tail()}")
            try:
                with self.client(timeout=0.5) as client:
                    if client.ping():
                        return
            except redis.RedisError:
                time.sleep(POLL_S)
        raise ClusterError(f"redis-server on port {self.port} did not answer:\n{self.log_tail()}")

    def signal(self, sig: int) -> bool:
        """Send ``sig``; reap our own child after SIGKILL. False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, sig)
        if sig == signal.SIGKILL and self.process is not None:
            self.process.wait(10)
        return True

    def wait_exit(self, timeout: float) -> bool:
        """Wait until the process is gone; True if it went in time."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The end of the node's logs, for error messages."""
        text = ""
        for path in (self.folder / "stdout.log", self.logfile):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text


@dataclass(frozen=True)
class NodeStatus:
    """One node as :meth:`LocalCluster.status` reports it."""

    port: int
    alive: bool
    role: str
    primary_port: int | None
    slots: SlotRanges
    state: str

    def describe(self) -> str:
        """One line for humans."""
        if not self.alive:
            return f"{HOST}:{self.port}  down"
        if self.role == "primary":
            role = f"primary  slots {_format_ranges(self.slots)}"
        else:
            role = f"replica of {self.primary_port}"
        return f"{HOST}:{self.port}  {role}  cluster_state:{self.state}"


@dataclass
class SlotMigration:
    """A slot being moved from one primary to another, step by step (so tests can interleave)."""

    cluster: LocalCluster
    slot: int
    source: Node
    target: Node
    target_id: str
    moved: int = 0

    def move(self, count: int = 100, timeout_ms: int = 5000) -> int:
        """MIGRATE up to ``count`` keys of the slot; returns how many moved."""
        keys = self.source.command("CLUSTER", "GETKEYSINSLOT", self.slot, count)
        if keys:
            self.source.command("MIGRATE", HOST, self.target.port, "", 0, timeout_ms, "KEYS", *keys)
        self.moved += len(keys)
        return len(keys)

    def move_all(self, batch: int = 100) -> int:
        """Move every key left in the slot; returns the total moved so far."""
        while self.move(batch):
            pass
        return self.moved

    def finish(self, timeout: float = 30.0) -> None:
        """Assign the slot to the target on every primary and wait until the cluster agrees."""
        self.target.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)
        self.source.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)
        for node in self.cluster.live_nodes():
            if node not in (self.source, self.target) and node.me().is_primary:
                node.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)
        self.cluster.wait_ready(timeout)


@dataclass
class LocalCluster:
    """``primaries`` primaries with ``replicas`` replicas each, on ports from ``base_port``.

    Nodes ``base_port .. base_port+primaries-1`` start as primaries (slots split evenly);
    the next ones are replicas, replica ``i`` of primary ``i % primaries``.
    """

    folder: Path
    base_port: int = DEFAULT_BASE_PORT
    primaries: int = 3
    replicas: int = 1
    node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS
    require_full_coverage: bool = True
    detach: bool = False
    extra_config: Mapping[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(init=False)
    timings: dict[str, float] = field(init=False, default_factory=dict)
    _lost: dict[int, tuple[SlotRanges, float]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()
        count = self.primaries * (1 + self.replicas)
        self.nodes = [
            Node(self.base_port + i, self.folder / str(self.base_port + i)) for i in range(count)
        ]

    @property
    def ports(self) -> list[int]:
        """Every node's port."""
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A seed URL for ``REDIS_URL`` (``REDIS_CLUSTER=true``)."""
        return f"redis://{HOST}:{self.base_port}"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """Every node as ``(host, port)``."""
        return [(HOST, port) for port in self.ports]

    def node(self, port: int) -> Node:
        """The node on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise ClusterError(f"port {port} is not a node of this cluster ({self.ports})")

    def live_nodes(self) -> list[Node]:
        """Nodes whose process runs."""
        return [node for node in self.nodes if node.alive()]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, fresh: bool = False, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes and wait until the cluster is ok and every replica in sync.

        A folder holding a previous cluster's ``nodes.conf`` files is resumed (data kept)
        unless ``fresh``; otherwise the node directories are wiped and the cluster created.

        Raises:
            ClusterError: a port is busy, a node does not start, or the cluster does not form.
        """
        began = time.monotonic()
        self._check_ports()
        resume = not fresh and all(node.conf.exists() for node in self.nodes)
        if not resume:
            for node in self.nodes:
                shutil.rmtree(node.folder, ignore_errors=True)
        try:
            for node in self.nodes:
                node.launch(self._options(node), detach=self.detach)
            for node in self.nodes:
                node.wait_answering(timeout)
            if not resume:
                self._create(timeout)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = time.monotonic() - began
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every node (AOF flushed), SIGKILL what is left after ``timeout``."""
        for node in self.nodes:
            node.signal(signal.SIGCONT)  # a frozen node would not act on SIGTERM
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.wait_exit(max(0.0, deadline - time.monotonic())):
                node.signal(signal.SIGKILL)
            if node.process is not None:
                node.process.wait(10)

    def kill(self, port: int) -> None:
        """SIGKILL one node: what a crash looks like."""
        node = self.node(port)
        slots: SlotRanges = ()
        try:
            me = node.me()
            slots = me.slots if me.is_primary else ()
        except redis.RedisError:
            pass
        if not node.signal(signal.SIGKILL):
            raise ClusterError(f"node {port} is not running")
        self._lost[port] = (slots, time.monotonic())

    def freeze(self, port: int) -> None:
        """SIGSTOP one node: alive but silent (a stalled replica makes ``WAIT`` time out)."""
        if not self.node(port).signal(signal.SIGSTOP):
            raise ClusterError(f"node {port} is not running")

    def thaw(self, port: int) -> None:
        """SIGCONT a frozen node."""
        self.node(port).signal(signal.SIGCONT)

    def kill_primary_of(self, key: str | bytes) -> int:
        """SIGKILL the primary owning ``key``'s slot; returns its port."""
        port = self.owner_of(key)
        self.kill(port)
        return port

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Start a stopped node again from its data directory; wait until the cluster is ready."""
        node = self.node(port)
        if node.alive():
            raise ClusterError(f"node {port} is still running")
        began = time.monotonic()
        node.launch(self._options(node), detach=self.detach)
        node.wait_answering(timeout)
        self.wait_ready(timeout)
        self.timings["restart_s"] = time.monotonic() - began

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until a replica of the killed primary ``old_port`` serves its slots; its port.

        Raises:
            ClusterError: ``old_port`` was not killed as a primary, or no failover in time.
        """
        slots, killed_at = self._lost.get(old_port, ((), 0.0))
        if not slots:
            raise ClusterError(f"{old_port} was not killed as a primary owning slots")
        promoted: list[int] = []

        def check() -> str | None:
            try:
                owner = self.owner_of_slot(slots[0][0])
            except ClusterError as exc:
                return str(exc)
            if owner == old_port:
                return f"{old_port} still owns its slots"
            promoted.append(owner)
            return self._state_problem(self.live_nodes())

        self._wait(check, timeout, f"no failover of {old_port}")
        self.timings["failover_s"] = time.monotonic() - killed_at
        return promoted[-1]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every live node says ``cluster_state:ok``, agrees, and replicas are in sync.

        Raises:
            ClusterError: not ready in time (with the last reason).
        """
        self._wait(self._ready_problem, timeout, "the cluster is not ready")

    # -- observation -------------------------------------------------------------------------

    def owner_of_slot(self, slot: int) -> int:
        """The port of the live primary that serves ``slot`` (as that primary itself says).

        Raises:
            ClusterError: no live primary owns it (e.g. between a crash and the failover).
        """
        for node in self.live_nodes():
            try:
                me = node.me()
            except redis.RedisError:
                continue
            if me.is_primary and me.owns(slot):
                return node.port
        raise ClusterError(f"no live primary owns slot {slot}")

    def owner_of(self, key: str | bytes) -> int:
        """The port of the primary serving ``key``'s slot."""
        return self.owner_of_slot(slot_of(key))

    def replicas_of(self, port: int) -> list[int]:
        """Ports of the live, healthy replicas of the primary on ``port``."""
        primary_id = self.node(port).me().node_id
        views = self.node(port).views()
        return sorted(
            view.port
            for view in views
            if view.primary_id == primary_id and not view.failing and view.port in self.ports
        )

    def status(self) -> list[NodeStatus]:
        """Every node: alive, role, primary, slots and the cluster state it reports."""
        statuses = []
        ports_by_id: dict[str, int] = {}
        for node in self.live_nodes():
            try:
                ports_by_id.update({v.node_id: v.port for v in node.views()})
            except redis.RedisError:
                continue
        for node in self.nodes:
            try:
                me, info = node.me(), self._cluster_info(node)
            except redis.RedisError:
                statuses.append(NodeStatus(node.port, False, "down", None, (), "-"))
                continue
            role = "primary" if me.is_primary else "replica"
            primary = ports_by_id.get(me.primary_id or "")
            state = info.get("cluster_state", "?")
            statuses.append(NodeStatus(node.port, True, role, primary, me.slots, state))
        return statuses

    def describe(self) -> str:
        """The status, one line per node."""
        return "\n".join(status.describe() for status in self.status())

    # -- slot migration ----------------------------------------------------------------------

    def begin_migration(self, slot: int, target_port: int) -> SlotMigration:
        """Mark ``slot`` IMPORTING on the target primary and MIGRATING on its owner.

        Raises:
            ClusterError: the target is not a primary or already owns the slot.
        """
        source = self.node(self.owner_of_slot(slot))
        target = self.node(target_port)
        target_me = target.me()
        if source is target or not target_me.is_primary:
            raise ClusterError(f"cannot migrate slot {slot} from {source.port} to {target_port}")
        source_id = source.me().node_id
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_me.node_id)
        return SlotMigration(self, slot, source, target, target_me.node_id)

    def migrate_slot(self, slot: int, target_port: int, batch: int = 100) -> int:
        """Move ``slot`` and its keys (in batches of ``batch``) to ``target_port``; keys moved."""
        migration = self.begin_migration(slot, target_port)
        migration.move_all(batch)
        migration.finish()
        return migration.moved

    # -- internals ---------------------------------------------------------------------------

    def _options(self, node: Node) -> dict[str, str]:
        return {
            "port": str(node.port),
            "bind": HOST,
            "daemonize": "no",
            "dir": str(node.folder),
            "pidfile": str(node.pidfile),
            "logfile": str(node.logfile),
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(self.node_timeout_ms),
            "cluster-replica-validity-factor": "0",  # a replica always stands for election
            "cluster-require-full-coverage": "yes" if self.require_full_coverage else "no",
            "appendonly": "yes",
            "appendfsync": "always",
            "save": "",
            "repl-diskless-sync-delay": "0",  # a new replica syncs at once, not after 5 s
            # replicas get a replication offset within a second even on an idle cluster: until
            # then CLUSTER SLOTS leaves them out, and clients would not learn about them
            "repl-ping-replica-period": "1",
            **self.extra_config,
        }

    def _check_ports(self) -> None:
        busy = [
            str(port)
            for node in self.nodes
            for port in (node.port, node.port + BUS_OFFSET)
            if port_in_use(port)
        ]
        if busy:
            raise ClusterError(
                f"cannot start the Redis Cluster: port(s) {', '.join(busy)} on {HOST} are in use. "
                "Is a cluster already running there (`make cluster-stop`), or choose other "
                "ports (--base-port)."
            )

    def _create(self, timeout: float) -> None:
        primaries = self.nodes[: self.primaries]
        for epoch, node in enumerate(self.nodes, start=1):
            node.command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for node, (low, high) in zip(primaries, split_slots(self.primaries), strict=True):
            node.command("CLUSTER", "ADDSLOTSRANGE", low, high)
        for node in self.nodes[1:]:
            self.nodes[0].command("CLUSTER", "MEET", HOST, node.port)
        self._wait(self._meet_problem, timeout, "the nodes did not meet")
        ids = {node.port: node.me().node_id for node in primaries}
        for i, node in enumerate(self.nodes[self.primaries :]):
            node.command("CLUSTER", "REPLICATE", ids[primaries[i % self.primaries].port])

    def _meet_problem(self) -> str | None:
        for node in self.nodes:
            views = node.views()
            if len(views) != len(self.nodes):
                return f"{node.port} knows {len(views)} nodes"
            pending = [v.port for v in views if v.flags & {"handshake", "noaddr"}]
            if pending:
                return f"{node.port} still shakes hands with {pending}"
        return None

    def _ready_problem(self) -> str | None:
        live = self.live_nodes()
        try:
            return self._state_problem(live) or self._replication_problem(live)
        except redis.RedisError as exc:
            return repr(exc)

    def _state_problem(self, live: list[Node]) -> str | None:
        live_ports = {node.port for node in live}
        owners: set[tuple[int, bool, str | None, SlotRanges]] | None = None
        for node in live:
            info = self._cluster_info(node)
            if info.get("cluster_state") != "ok":
                return f"{node.port} says cluster_state:{info.get('cluster_state')}"
            views = node.views()
            unhealthy = [v.port for v in views if v.port in live_ports and v.failing]
            if unhealthy:
                return f"{node.port} still flags {unhealthy} as failing"
            seen = {(v.port, v.is_primary, v.primary_id, v.slots) for v in views}
            seen = {row for row in seen if row[0] in live_ports}
            if owners is not None and seen != owners:
                return f"{node.port} disagrees on roles or slot owners"
            owners = seen
        return None

    def _replication_problem(self, live: list[Node]) -> str | None:
        live_ports = {node.port for node in live}
        for node in live:
            listed = {int(n[1]) for r in node.command("CLUSTER", "SLOTS") for n in r[2:]}
            if live_ports - listed:
                return f"{node.port}'s CLUSTER SLOTS leaves out {sorted(live_ports - listed)}"
        for node in live:
            info = node.info("replication")
            if info.get("role") != "slave":
                continue
            if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
                return f"replica {node.port} is not linked to its primary yet"
            primary = self.node(int(info["master_port"]))
            offset = primary.info("replication").get("master_repl_offset")
            if info.get("slave_repl_offset") != offset:
                return f"replica {node.port} lags its primary {primary.port}"
        return None

    @staticmethod
    def _cluster_info(node: Node) -> dict[str, str]:
        text = str(node.command("CLUSTER", "INFO"))
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {key: value.strip() for key, value in pairs}

    @staticmethod
    def _wait(check: Callable[[], str | None], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        problem = check()
        while problem is not None:
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} within {timeout:.0f} s: {problem}")
            time.sleep(POLL_S)
            problem = check()


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.redis_cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--folder", type=Path, default=Path(".cluster"))
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    parser.add_argument("--node-timeout-ms", type=int, default=DEFAULT_NODE_TIMEOUT_MS)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start (or resume) the cluster in the folder")
    start.add_argument("--fresh", action="store_true", help="wipe the folder's data first")
    commands.add_parser("stop", help="stop every node (SIGTERM)")
    commands.add_parser("status", help="one line per node")
    for name in ("kill", "restart"):
        commands.add_parser(name, help=f"{name} one node").add_argument("port", type=int)
    commands.add_parser("owner", help="the primary of a key's slot").add_argument("key")
    migrate = commands.add_parser("migrate", help="move a slot and its keys to a primary")
    migrate.add_argument("slot", type=int)
    migrate.add_argument("port", type=int)
    return parser


def _usage(cluster: LocalCluster) -> str:
    first, last = cluster.ports[0], cluster.ports[-1]
    return (
        f"Redis Cluster ready in {cluster.timings['start_s']:.1f} s: {cluster.primaries} primaries"
        f" + {cluster.primaries * cluster.replicas} replicas on {HOST}:{first}-{last}"
        f" (data in {cluster.folder}).\n{cluster.describe()}\n\n"
        f"  REDIS_CLUSTER=true REDIS_URL={cluster.url} make run\n"
        f"  redis-cli -c -p {first}\n"
        "  make cluster-stop"
    )


def _stop(cluster: LocalCluster, _args: argparse.Namespace) -> str:
    cluster.stop()
    return "stopped"


def _kill(cluster: LocalCluster, args: argparse.Namespace) -> str:
    cluster.kill(args.port)
    return f"killed {args.port}"


def _restart(cluster: LocalCluster, args: argparse.Namespace) -> str:
    cluster.restart(args.port)
    return cluster.describe()


def _migrate(cluster: LocalCluster, args: argparse.Namespace) -> str:
    moved = cluster.migrate_slot(args.slot, args.port)
    return f"slot {args.slot}: {moved} keys moved to {args.port}"


COMMANDS: dict[str, Callable[[LocalCluster, argparse.Namespace], str]] = {
    "start": lambda cluster, args: _usage(cluster.start(fresh=args.fresh)),
    "stop": _stop,
    "status": lambda cluster, _args: cluster.describe(),
    "kill": _kill,
    "restart": _restart,
    "owner": lambda cluster, args: (
        f"slot {slot_of(args.key)} on {HOST}:{cluster.owner_of(args.key)}"
    ),
    "migrate": _migrate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    cluster = LocalCluster(
        args.folder, args.base_port, node_timeout_ms=args.node_timeout_ms, detach=True
    )
    try:
        print(COMMANDS[args.command](cluster, args))
    except (ClusterError, redis.RedisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
