"""docs/operations/configuration.md covers every setting the server reads."""

from __future__ import annotations

import re
from pathlib import Path

from server.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations" / "configuration.md"
V11 = (
    "REDIS_CLUSTER",
    "REDIS_MIN_REPLICAS_ACK",
    "DATABASE_REPLICA_URLS",
)


def _documented() -> set[str]:
    """Variables named in the first cell of a table row (`NAME` or `A`, `B`)."""
    names: set[str] = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_settings_field_has_a_row() -> None:
    """A new field of Settings fails here until the guide describes it."""
    fields = {name.upper() for name in Settings.__struct_fields__}
    assert fields - _documented() == set()


def test_launcher_and_v11_settings_have_rows() -> None:
    """PORT, HOST and the contract's v1.1 settings not read yet are described too."""
    assert {"PORT", "HOST", *V11} <= _documented()


def test_nothing_documented_that_does_not_exist() -> None:
    """Every row names a real setting (no stale or misspelt names)."""
    known = {name.upper() for name in Settings.__struct_fields__}
    assert _documented() - known - {"PORT", "HOST", "PROMETHEUS_MULTIPROC_DIR", *V11} == set()
