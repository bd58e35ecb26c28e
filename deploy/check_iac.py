"""Static checks of deploy/terraform and the Dockerfile that need no cloud and no Docker.

Run by ``make iac-check`` in its own venv (python-hcl2). Each check prints one line; the exit
status is the number of failures (0: all passed). What is checked:

- every ``.tf`` file parses as HCL2;
- the commands Terraform runs are the Procfile's lines;
- the load balancer's idle timeout exceeds two WebSocket heartbeats (``WS_HEARTBEAT_S``'s
  default is read from server/settings.py), readiness and liveness use the right paths;
- every setting Terraform passes to the processes is one the server reads (or a documented
  v1.1 setting), so a misspelt name cannot be silently ignored;
- the Dockerfile runs the Procfile's ``web`` line, installs from the hashed lock, runs as a
  non-root user with a health check on ``/health``, and everything it copies passes
  ``.dockerignore``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import hcl2  # type: ignore[import-not-found,unused-ignore]
from dockerfile import ROOT, build_context, ignore_patterns, instructions

TERRAFORM = ROOT / "deploy" / "terraform"
# Read by the process launcher, not by Settings.
LAUNCH_SETTINGS = {"PORT"}

Tree = dict[str, Any]


class CheckFailed(AssertionError):
    """A check found a problem (its message says which)."""


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals; drop them."""
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _blocks(tree: Tree, kind: str) -> Iterator[tuple[str, str, Tree]]:
    """Yield ``(type, name, body)`` of every ``resource``/``data`` block."""
    for entry in tree.get(kind, []):
        for type_, named in entry.items():
            for name, body in named.items():
                yield _unquote(type_), _unquote(name), body


def load_terraform() -> Tree:
    """Parse every .tf file and merge the top-level lists."""
    merged: Tree = {}
    files = sorted(TERRAFORM.glob("*.tf"))
    if not files:
        raise CheckFailed(f"no .tf files in {TERRAFORM}")
    for path in files:
        with path.open(encoding="utf-8") as handle:
            try:
                tree = hcl2.load(handle)
            except Exception as exc:
                raise CheckFailed(f"{path.name} does not parse: {exc}") from exc
        for key, value in tree.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
    print(f"    parsed {len(files)} files")
    return merged


def procfile() -> dict[str, str]:
    """The Procfile's process lines, by name."""
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    pairs = (line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in pairs}


def terraform_processes(tree: Tree) -> dict[str, str]:
    """``local.processes`` of locals.tf."""
    for entry in tree.get("locals", []):
        if "processes" in entry:
            return {name: _unquote(cmd) for name, cmd in entry["processes"].items()}
    raise CheckFailed("locals.tf defines no local.processes")


def check_processes(tree: Tree) -> None:
    """Terraform runs exactly the Procfile's lines."""
    declared, deployed = procfile(), terraform_processes(tree)
    for name, command in declared.items():
        if deployed.get(name) != command:
            raise CheckFailed(f"Procfile {name}: {command!r}, Terraform: {deployed.get(name)!r}")
    for name in sorted(set(deployed) - set(declared)):
        print(f"    note: the Procfile has no {name!r} line yet; Terraform runs {deployed[name]!r}")


def settings_defaults() -> dict[str, Any]:
    """Field name -> default literal of ``Settings`` in server/settings.py (no import)."""
    module = ast.parse((ROOT / "server" / "settings.py").read_text(encoding="utf-8"))
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return {
                stmt.target.id: _literal(stmt.value)
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    raise CheckFailed("server/settings.py has no Settings class")


def _literal(node: ast.expr | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None  # an expression such as 7 * 24 * 3600 or an enum member


def _variable_default(tree: Tree, name: str) -> Any:
    for entry in tree.get("variable", []):
        for key, body in entry.items():
            if _unquote(key) == name:
                return _unquote(body.get("default"))
    raise CheckFailed(f"variables.tf has no variable {name!r}")


def check_idle_timeout(tree: Tree) -> None:
    """The ALB outlives two heartbeats, with both the server's and the deployment's value."""
    heartbeat = max(
        float(settings_defaults()["ws_heartbeat_s"]), _variable_default(tree, "ws_heartbeat_s")
    )
    idle = _variable_default(tree, "alb_idle_timeout_s")
    if not idle > 2 * heartbeat:
        raise CheckFailed(f"ALB idle timeout {idle}s is not above 2 x heartbeat ({heartbeat}s)")
    lbs = [body for type_, _, body in _blocks(tree, "resource") if type_ == "aws_lb"]
    if not lbs or any(lb.get("idle_timeout") != "${var.alb_idle_timeout_s}" for lb in lbs):
        raise CheckFailed("aws_lb.idle_timeout must be var.alb_idle_timeout_s")
    print(f"    idle timeout {idle}s > 2 x heartbeat {heartbeat}s")


def check_health_paths(tree: Tree) -> None:
    """Readiness routes traffic, liveness restarts tasks."""
    groups = [
        body for type_, _, body in _blocks(tree, "resource") if type_ == "aws_lb_target_group"
    ]
    paths = {_unquote(check["path"]) for group in groups for check in group.get("health_check", [])}
    if paths != {"/health/ready"}:
        raise CheckFailed(f"target group health checks use {paths}, expected /health/ready")
    text = (TERRAFORM / "ecs.tf").read_text(encoding="utf-8")
    if "/health'" not in text:
        raise CheckFailed("the web container's health check does not call /health")


def check_setting_names() -> None:
    """Every environment name Terraform sets is read by the server (or is v1.1)."""
    known = {name.upper() for name in settings_defaults()} | LAUNCH_SETTINGS
    text = "\n".join(path.read_text(encoding="utf-8") for path in TERRAFORM.glob("*.tf"))
    environment = re.search(r"app_environment = \[for name, value in \{(.*?)\}", text, re.S)
    secrets = re.search(r"required_secrets = \{(.*?)\}", text, re.S)
    optional = re.findall(r"\? \{ ([A-Z_]+) = \"", text)
    if environment is None or secrets is None:
        raise CheckFailed("ecs.tf/secrets.tf no longer define app_environment/required_secrets")
    names = set(re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=", environment.group(1), re.M))
    names |= set(re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=", secrets.group(1), re.M))
    names |= set(optional) | {"PORT"}
    unknown = sorted(names - known)
    if unknown:
        raise CheckFailed(f"settings the server does not read: {unknown}")
    print(f"    {len(names)} settings, all known")


def check_dockerfile() -> None:
    """Base image pinned, hashed install, non-root, health check, the Procfile's web line."""
    parsed = instructions()
    for keyword, rest in parsed:
        if keyword == "FROM" and not rest.startswith("base "):
            image = rest.split()[0]
            if (
                ":" not in image
                or image.endswith(":latest")
                or not re.search(r":\d+\.\d+\.\d+", image)
            ):
                raise CheckFailed(f"base image {image!r} is not pinned to a full version tag")
    runs = " ".join(rest for keyword, rest in parsed if keyword == "RUN")
    if "--require-hashes" not in runs or "requirements/lock.txt" not in runs:
        raise CheckFailed("the image does not install requirements/lock.txt with --require-hashes")
    users = [rest for keyword, rest in parsed if keyword == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        raise CheckFailed("the image does not end with a non-root USER")
    health = [rest for keyword, rest in parsed if keyword == "HEALTHCHECK"]
    if not health or "/health'" not in health[-1]:
        raise CheckFailed("no HEALTHCHECK against /health")
    cmd = [rest for keyword, rest in parsed if keyword == "CMD"][-1]
    web = procfile()["web"]
    if cmd != f'["sh", "-c", "exec {web}"]':
        raise CheckFailed(f"CMD {cmd} does not exec the Procfile's web line {web!r}")
    try:
        copies = build_context(parsed, ignore_patterns())
    except ValueError as exc:
        raise CheckFailed(str(exc)) from exc
    count = sum(len(files) for files in copies.values())
    print(f"    {count} files copied into the image pass .dockerignore")


def main() -> int:
    """Run every check; return the number that failed."""
    tree: Tree = {}

    def parse() -> None:
        tree.update(load_terraform())

    checks: list[tuple[str, Callable[[], None]]] = [
        ("HCL parses (python-hcl2)", parse),
        ("Terraform runs the Procfile's lines", lambda: check_processes(tree)),
        ("ALB idle timeout > 2 heartbeats", lambda: check_idle_timeout(tree)),
        (
            "health checks: /health/ready (ALB), /health (container)",
            lambda: check_health_paths(tree),
        ),
        ("settings passed to tasks exist", check_setting_names),
        ("Dockerfile: pinned, hashed, non-root, healthcheck, web line", check_dockerfile),
    ]
    failures = 0
    for title, check in checks:
        try:
            check()
        except CheckFailed as exc:
            failures += 1
            print(f"FAIL {title}: {exc}")
        else:
            print(f"ok   {title}")
    print(f"{len(checks) - failures} passed, {failures} failed")
    return failures


if __name__ == "__main__":
    sys.exit(main())
