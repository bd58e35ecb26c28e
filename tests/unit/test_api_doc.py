"""docs/api.md keeps up with the declared operations, and nothing points outside the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.app import operations

ROOT = Path(__file__).resolve().parents[2]
API_DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
LISTS = [op for op in operations() if op.listing is not None]


@pytest.mark.parametrize("op", LISTS, ids=lambda op: op.operation_id)
def test_every_list_endpoint_with_its_sorts_and_filters_is_described(op: object) -> None:
    listing = op.listing  # type: ignore[attr-defined]
    path = re.sub(r"{(\w+):\w+}", "{id}", op.path).removeprefix("/api/v1")  # type: ignore[attr-defined]
    rows = [line for line in API_DOC.splitlines() if line.startswith(f"| `GET {path}`")]
    assert rows, f"no row for GET {path} in docs/api.md"
    for name in listing.sorts:
        assert f"`{name}`" in rows[0]
    for name in listing.filters:
        assert f"filter[{name}]" in rows[0]


def _docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", _docs(), ids=lambda path: str(path.relative_to(ROOT)))
def test_docs_reference_nothing_outside_the_repository(doc: Path) -> None:
    """Issue 16: the README sent readers to a CONTRACT.md 'kept beside this repository'."""
    text = doc.read_text(encoding="utf-8")
    assert "CONTRACT.md" not in text
    assert "beside this repository" not in text
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).resolve().exists(), f"{doc.name} links to missing {target}"
