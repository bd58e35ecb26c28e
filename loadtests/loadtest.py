"""``make loadtest``: deploy, seed, run Locust headless, report, tear down.

``python -m loadtests.loadtest --users 200 --spawn-rate 2 --duration 3m --scenario mixed``

Unless ``--host`` names a running deployment, starts one (``loadtests/deployment.py``: two
nodes on PostgreSQL and Redis, the worker, HAProxy in front), seeds it
(``python -m server.admin seed``), runs Locust from its own venv (``.venv-load``) and writes
everything to ``loadtests/results/<timestamp>/``: Locust's CSV files and HTML report, the
verdict (``verdict.json``), each process's log and CPU time, and with ``--profile`` a py-spy
profile of node 0. Exits with Locust's status: 0 when every threshold held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from loadtests.cluster import ROOT, cpu_seconds
from loadtests.deployment import Deployment

LOAD_BIN = ROOT / ".venv-load" / "bin"
SCENARIOS = {
    "mixed": ["Listener", "Chatter", "Student", "LoginFlood"],
    "chatter": ["Chatter", "LoginFlood"],
    "student": ["Student", "LoginFlood"],
    "idle": ["Listener", "LoginFlood"],
    "flood": ["LoginFlood"],
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the Makefile passes its variables through)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="", help="a running deployment; empty: start one")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=2.0)
    parser.add_argument("--duration", default="3m", help="Locust --run-time (30s, 3m...)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed")
    parser.add_argument("--codec", choices=["json", "msgpack", "both"], default="both")
    parser.add_argument("--seed-users", type=int, default=0, help="default: users + 10")
    parser.add_argument("--seed-groups", type=int, default=0, help="default: seed users / 10")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument(
        "--bcrypt-rounds", type=int, default=12, help="the deployment's (and seed's) cost"
    )
    parser.add_argument("--profile", type=int, default=0, help="py-spy node 0 for N seconds")
    parser.add_argument("--results", type=Path, default=ROOT / "loadtests" / "results")
    args = parser.parse_args(argv)
    args.seed_users = args.seed_users or args.users + 10
    args.seed_groups = args.seed_groups or max(2, args.seed_users // 10)
    return args


def locust_command(args: argparse.Namespace, host: str, folder: Path) -> list[str]:
    """The headless Locust run."""
    return [
        str(LOAD_BIN / "locust"),
        "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--only-summary",
        "--host", host,
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.duration,
        "--csv", str(folder / "locust"), "--html", str(folder / "report.html"),
        "--verdict-file", str(folder / "verdict.json"),
        "--seed-users", str(args.seed_users), "--seed-groups", str(args.seed_groups),
        "--codec", args.codec,
        *SCENARIOS[args.scenario],
    ]  # fmt: skip


def seconds(duration: str) -> float:
    """Locust's ``1h2m3s`` form, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms]?)", duration)
    scale = {"h": 3600, "m": 60, "s": 1, "": 1}
    return sum(float(value) * scale[unit] for value, unit in parts)


def run_locust(command: list[str], folder: Path) -> int:
    """Run Locust, echoing and keeping its output; returns its exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (folder / "locust.log").open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout or ():
            sys.stdout.write(line)
            log.write(line)
        return process.wait()


def start_profile(
    pid: int,
    delay: float,
    duration: int,
    folder: Path,
    py_spy: Path = LOAD_BIN / "py-spy",
    name: str = "node0",
) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` for ``duration`` s once ``delay`` s have passed (raw stacks).

    The stacks go to ``folder/<name>.pyspy.txt`` (``summarise_profile`` reads them).
    """
    command = (
        f"sleep {delay:.0f} && exec {py_spy} record --pid {pid} "
        f"--duration {duration} --rate 100 --nonblocking --format raw "
        f"--output {folder / f'{name}.pyspy.txt'}"
    )
    with (folder / f"{name}.py-spy.log").open("wb") as log:
        return subprocess.Popen(["sh", "-c", command], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603, S607


def summarise_profile(folder: Path, top: int = 25, name: str = "node0") -> str:
    """Where a node's samples went: the thread pool (bcrypt) apart, then the event loop."""
    source = folder / f"{name}.pyspy.txt"
    if not source.exists():
        return "no profile"
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = pool = 0
    for line in source.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [
            re.sub(r" \(.*?/(site-packages|lib/python3\.\d+)/", " (", f) for f in stack.split(";")
        ]
        samples += int(count)
        if any(frame.startswith(("_WorkItem.run", "_worker (")) for frame in frames):
            pool += int(count)
            continue
        own[frames[-1]] += int(count)
        for frame in set(frames):
            total[frame] += int(count)
    loop = samples - pool
    lines = [
        f"{samples} samples: {100 * pool / samples:.1f}% in the thread pool (bcrypt), "
        f"{100 * loop / samples:.1f}% on the event loop thread",
        "event loop, own time:",
    ]
    lines += [f"  {100 * n / loop:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("event loop, including callees:")
    lines += [f"  {100 * n / loop:5.1f}%  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    """Deploy (unless ``--host``), seed, run, report; returns Locust's status."""
    args = parse(argv)
    if not (LOAD_BIN / "locust").exists():
        raise SystemExit("no .venv-load: run `make load-install` (or `make loadtest`)")
    folder = args.results / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    deployment = (
        None if args.host else Deployment(folder, args.nodes, bcrypt_rounds=args.bcrypt_rounds)
    )
    try:
        if deployment is not None:
            print(
                f"starting {args.nodes} nodes, the worker and HAProxy; logs in {folder}", flush=True
            )
            await deployment.start()
            deployment.run([
                sys.executable, "-m", "server.admin", "seed",
                "--users", str(args.seed_users), "--groups", str(args.seed_groups),
            ])  # fmt: skip
        host = args.host or (deployment.url if deployment else "")
        return run_and_report(args, host, folder, deployment)
    finally:
        if deployment is not None:
            await deployment.stop()
        print(f"results: {folder}", flush=True)


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def save_metrics(deployment: Deployment, folder: Path) -> None:
    """Each node's Prometheus exposition at the end of the run (DB query times and more)."""
    for index, port in enumerate(deployment.node_ports):
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/health/metrics", timeout=10).text
        except httpx.HTTPError as exc:
            text = f"# not available: {exc!r}\n"
        (folder / f"metrics-node{index}.txt").write_text(text)


def run_and_report(
    args: argparse.Namespace, host: str, folder: Path, deployment: Deployment | None
) -> int:
    """Run Locust (and py-spy), then print the verdict and the processes' CPU time."""
    pids = {name: deployment.pid(name) for name in deployment.processes} if deployment else {}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    profile = None
    if args.profile and deployment is not None:
        ramp = args.users / args.spawn_rate
        profile = start_profile(deployment.pid("node0"), ramp + 5, args.profile, folder)
    started, children = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    status = run_locust(locust_command(args, host, folder), folder)
    elapsed = time.monotonic() - started
    cpu = {name: round(cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()}
    cpu["locust"] = round(_cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(children), 2)
    if deployment is not None:
        save_metrics(deployment, folder)
    if profile is not None:
        profile.wait(60)
        (folder / "node0.profile.txt").write_text(summarise_profile(folder) + "\n")
        print(summarise_profile(folder, 12))
    (folder / "cpu.json").write_text(json.dumps({"wall_s": round(elapsed, 1), "cpu_s": cpu}) + "\n")
    print(f"CPU seconds over {elapsed:.0f} s: {cpu}")
    verdict = folder / "verdict.json"
    passed = verdict.exists() and json.loads(verdict.read_text())["passed"]
    verdict_text = "PASS" if passed and status == 0 else "FAIL"
    print(f"VERDICT: {verdict_text} (report: {folder / 'report.html'})")
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
