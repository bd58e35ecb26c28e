"""Just enough of the Dockerfile and .dockerignore formats for deploy/'s checks (stdlib only)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def ignore_patterns(path: Path = ROOT / ".dockerignore") -> list[str]:
    """The patterns of .dockerignore, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops ``path``.

    The last matching pattern wins, a pattern that matches a directory covers what is inside
    it, and ``**/`` matches at any depth.
    """
    ignored_ = False
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if glob.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, glob[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes)
        if hit:
            ignored_ = not negated
    return ignored_


def build_context(parsed: list[tuple[str, str]], patterns: list[str]) -> dict[str, list[Path]]:
    """Files each ``COPY`` from the build context receives, by ``"<source> <destination>"``.

    Raises:
        ValueError: a source is missing, or .dockerignore drops all of it.
    """
    copies: dict[str, list[Path]] = {}
    for keyword, rest in parsed:
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, destination = rest.split()
        for source in sources:
            base = ROOT / source
            if not base.exists():
                raise ValueError(f"COPY source {source} does not exist")
            files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
            kept = [p for p in files if not ignored(str(p.relative_to(ROOT)), patterns)]
            if not kept:
                raise ValueError(f"COPY source {source} is excluded by .dockerignore")
            copies[f"{source} {destination}"] = kept
    return copies
