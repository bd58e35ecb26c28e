"""Rehearse the Dockerfile without a Docker engine (``make iac-check``; none runs here).

What a build and a start of the image would do, done in a temporary directory:

1. the build stage's ``COPY`` lines, filtered by .dockerignore, into ``<tmp>/src``;
2. ``pip download`` of requirements/lock.txt for the image's platform only (CPython 3.11,
   manylinux up to glibc 2.36, Debian 12's), with ``--require-hashes``: every locked package
   has a wheel the image can install;
3. the build stage's ``RUN`` lines as written, ``/opt/venv`` moved under ``<tmp>`` and pip
   limited to the wheels of step 2 (so the venv, ``pip check`` and the byte-compilation run);
4. the Procfile's ``release`` line (migrations, on a throw-away SQLite file), then the image's
   ``CMD`` with ``--host 0.0.0.0`` replaced by 127.0.0.1 (nothing here listens beyond
   loopback), the ``HEALTHCHECK`` command against it, ``/health/ready`` and ``/docs``, and a
   SIGTERM that must stop it cleanly;
5. each taskiq line of the Procfile imports its broker or scheduler object.

Not rehearsed: the base image itself, the runtime stage's user, file modes and read-only
root file system, which need a real build.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket

# Runs only the Dockerfile's and the Procfile's own commands, against loopback.
import subprocess  # nosec B404
import sys
import tempfile
import time
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path

from dockerfile import ROOT, build_context, ignore_patterns, instructions

GLIBC_MINORS = (5, 12, 17, 24, 28, 31, 34, 35, 36)  # manylinux tags Debian 12 accepts
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


def step(title: str) -> None:
    """Announce a step."""
    print(f"--- {title}", flush=True)


def stage(parsed: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """The instructions of one ``FROM ... AS name`` stage."""
    inside, result = False, []
    for keyword, rest in parsed:
        if keyword == "FROM":
            inside = rest.split()[-1] == name
            continue
        if inside:
            result.append((keyword, rest))
    return result


def copy_context(parsed: list[tuple[str, str]], src: Path) -> None:
    """Step 1: the build stage's COPY lines (WORKDIR /src)."""
    copies = build_context(parsed, ignore_patterns())
    print(f"    {sum(len(files) for files in copies.values())} files")
    for spec, files in copies.items():
        source, destination = spec.split()
        for path in files:
            relative = path.relative_to(ROOT / source) if (ROOT / source).is_dir() else Path()
            target = src / destination / relative if relative.parts else src / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def download_wheels(lock: Path, wheels: Path) -> None:
    """Step 2: the image platform's wheels, hashes required."""
    platforms = [f"--platform=manylinux_2_{minor}_x86_64" for minor in GLIBC_MINORS]
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         *platforms, "--platform=manylinux2014_x86_64", "--platform=any",
         "--python-version=3.11", "--implementation=cp",
         "--abi=cp311", "--abi=abi3", "--abi=none",
         "--require-hashes", "-r", str(lock), "-d", str(wheels)],
    )  # fmt: skip
    print(f"    {len(list(wheels.iterdir()))} wheels")


def run_build_steps(build: list[tuple[str, str]], tmp: Path, src: Path, wheels: Path) -> Path:
    """Step 3: the build stage's RUN lines, /opt/venv under tmp, pip offline."""
    venv = tmp / "opt" / "venv"
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for keyword, rest in build:
        if keyword == "RUN":
            command = rest.replace("/opt/venv", str(venv))
            print(f"    RUN {command[:100]}...", flush=True)
            run(["sh", "-c", command], cwd=src, env=env)
    return venv


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> int:
    """Status of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310  # nosec B310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a command; raise with its output when it fails."""
    done = subprocess.run(  # noqa: S603  # nosec B603
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def procfile() -> dict[str, str]:
    """The Procfile's lines by process name."""
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def start_node(parsed: list[tuple[str, str]], env: dict[str, str], src: Path) -> None:
    """Step 4: release, then CMD on loopback, probed by the HEALTHCHECK command."""
    run(["sh", "-c", f"exec {procfile()['release']}"], cwd=src, env=env)
    print("    release: migrations applied")
    cmd = json.loads([rest for keyword, rest in parsed if keyword == "CMD"][-1])
    cmd = [part.replace("--host 0.0.0.0", "--host 127.0.0.1") for part in cmd]
    health = [rest for keyword, rest in parsed if keyword == "HEALTHCHECK"][-1]
    probe = json.loads(health[health.index("CMD ") + 4 :])
    log_path = src.parent / "node.log"
    with log_path.open("w") as log:
        node = subprocess.Popen(  # noqa: S603  # nosec B603
            cmd, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _probe_and_stop(node, probe, env, src)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
    output = log_path.read_text(encoding="utf-8")
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is a clean stop.
    if node.returncode not in (0, -signal.SIGTERM) or "shutdown complete" not in output:
        raise RuntimeError(f"unclean stop on SIGTERM (exit {node.returncode}):\n{output[-3000:]}")
    print(f"    SIGTERM: drained and stopped (exit {node.returncode})")


def _probe_and_stop(
    node: subprocess.Popen[bytes], probe: list[str], env: dict[str, str], src: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while subprocess.run(  # noqa: S603  # nosec B603
        probe, cwd=src, env=env, capture_output=True, check=False
    ).returncode:
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the node did not become healthy")
        time.sleep(0.5)
    print("    HEALTHCHECK command: exit 0")
    base = f"http://127.0.0.1:{env['PORT']}"
    for path in ("/health/ready", "/docs", "/openapi.json"):
        status = get(base + path)
        if status != HTTPStatus.OK:
            raise RuntimeError(f"GET {path}: {status}, expected 200")
        print(f"    GET {path}: {status}")
    node.send_signal(signal.SIGTERM)
    node.wait(timeout=STOP_TIMEOUT_S)


def import_taskiq_targets(env: dict[str, str], src: Path) -> None:
    """Step 5: ``taskiq worker|scheduler module:object`` lines import their object."""
    for name, command in procfile().items():
        words = command.split()
        if words[0] == "taskiq" and ":" in command:
            module, _, attribute = words[2].partition(":")
            code = f"import importlib; getattr(importlib.import_module({module!r}), {attribute!r})"
            run(["python", "-c", code], cwd=src, env=env)
            print(f"    {name}: {words[2]} imports")


def main() -> int:
    """Rehearse; 0 when every step passed."""
    parsed = instructions()
    with tempfile.TemporaryDirectory(prefix="sb-image-") as name:
        tmp = Path(name)
        src, wheels = tmp / "src", tmp / "wheels"
        step("1. COPY (build context through .dockerignore)")
        copy_context(stage(parsed, "build"), src)
        step("2. wheels for CPython 3.11 on glibc <= 2.36, --require-hashes")
        download_wheels(src / "requirements" / "lock.txt", wheels)
        step("3. RUN lines of the build stage")
        venv = run_build_steps(stage(parsed, "build"), tmp, src, wheels)
        env = {
            "PATH": f"{venv}/bin:/usr/bin:/bin",
            "PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'rehearsal.db'}",
            "MEDIA_DIR": str(tmp / "media"),
            "HOME": str(tmp),
        }
        step("4. release, then CMD and HEALTHCHECK")
        start_node(parsed, env, src)
        step("5. taskiq processes")
        import_taskiq_targets(env, src)
    print("image rehearsal: 5 passed, 0 failed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"FAIL {exc}")
        print("image rehearsal: failed")
        sys.exit(1)
