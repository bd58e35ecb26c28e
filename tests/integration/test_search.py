"""Search on what people typed, over HTTP, with the same answers on PostgreSQL and SQLite.

Stored text is HTML-escaped; search compares it as typed, so ``&`` finds ``&amp;`` and
``amp`` does not. Quotes, accents in either Unicode form, case, and LIKE wildcards too.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.factories.groups import GROUPS, create_group, post_message
from tests.factories.rows import many_messages
from tests.factories.users import Account, account
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import migrate
from tests.fixtures.settings import make_settings

TYPED = {
    "cartoon": "Tom & Jerry <3",
    "quotes": 'She said "hi" & it\'s fine',
    "accent": "École normale",
    "percent": "50% off_sale",
    "lookalike": "5000 offXsale",
    "case": "UPPER lower",
    "literal": "a &lt; typed entity",
    "greek": "ΟΔΟΣ ΠΑΝΕΠΙΣΤΗΜΙΟΥ 12",
    "turkish": "İstanbul'da görüşürüz",
}
CASES = [
    ("&", {"cartoon", "quotes", "literal"}),
    ("amp", set()),
    ("<3", {"cartoon"}),
    ("<", {"cartoon"}),
    ("lt", {"literal"}),
    ("&lt;", {"literal"}),
    ('"hi"', {"quotes"}),
    ("quot", set()),
    ("it's", {"quotes"}),
    ("#x27", set()),
    (unicodedata.normalize("NFD", "école"), {"accent"}),
    ("ÉCOLE", {"accent"}),
    ("%", {"percent"}),
    ("_", {"percent"}),
    ("0% off_", {"percent"}),
    ("upper LOWER", {"case"}),
    ("ΟΔΟΣ", {"greek"}),  # Python and PostgreSQL lower-case a final sigma differently
    ("İstanbul", {"turkish"}),  # and a dotted capital I
]


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def search_node(
    request: pytest.FixtureRequest, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A node on PostgreSQL or on SQLite."""
    folder = tmp_path_factory.mktemp(f"search-{request.param}")
    url = pg_url
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'search.db'}"
        await asyncio.to_thread(migrate, url)
    async with serve(make_settings(url, None, "sbsearch:", folder / "media")) as running:
        yield running


@pytest.fixture(scope="module")
async def posted(search_node: RunningServer) -> tuple[Account, str, dict[int, str]]:
    """A group holding one message per typed text; the seqs name them."""
    async with httpx.AsyncClient(base_url=search_node.base_url, timeout=20) as http:
        owner = await account(http)
        group = str((await create_group(http, owner))["id"])
        seqs = {}
        for name, text in TYPED.items():
            seqs[(await post_message(http, owner, group, text))["seq"]] = name
    return owner, group, seqs


@pytest.mark.parametrize(("term", "expected"), CASES)
async def test_message_search_matches_what_was_typed(
    search_node: RunningServer,
    posted: tuple[Account, str, dict[int, str]],
    term: str,
    expected: set[str],
) -> None:
    """Each term finds exactly the messages whose typed text holds it, on either database."""
    owner, group, seqs = posted
    async with httpx.AsyncClient(base_url=search_node.base_url, timeout=20) as http:
        found = await http.get(
            f"{GROUPS}/{group}/messages",
            headers=owner.headers,
            params={"search": term, "page_size": 100},
        )
    assert found.status_code == 200, found.text
    assert {seqs[m["seq"]] for m in found.json()["data"]} == expected


async def test_group_search_keeps_sort_and_filters(search_node: RunningServer) -> None:
    """Names and descriptions match as typed; sort and filters still apply."""
    async with httpx.AsyncClient(base_url=search_node.base_url, timeout=20) as http:
        owner = await account(http)
        tag = owner.username
        names = [f"{tag} R&D <lab>", f"{tag} B&B", f"{tag} plain"]
        # Fixed descriptions: Faker's could hold "amp" (example, campus) and match below.
        for name in names:
            await create_group(http, owner, name=name, description="notes", visibility="public")
        await create_group(
            http, owner, name=f"{tag} private &", description="notes", visibility="private"
        )
        await create_group(
            http, owner, name=f"{tag} described", description="Q&A", visibility="public"
        )

        async def search(term: str, **params: str) -> list[str]:
            query = {"search": term, "filter[member]": "me", "page_size": "100", **params}
            listed = await http.get(GROUPS, headers=owner.headers, params=query)
            assert listed.status_code == 200, listed.text
            return [g["name"] for g in listed.json()["data"]]

        both = await search(f"{tag} ")
        assert len(both) == 5
        found = await search("&", sort="-name", **{"filter[visibility]": "public"})
        ampersands = [f"{tag} R&amp;D &lt;lab&gt;", f"{tag} B&amp;B", f"{tag} described"]
        assert [n for n in found if n.startswith(tag)] == sorted(ampersands, reverse=True)
        assert await search("amp") == [] and await search("lt;") == []
        assert await search(f"{tag.upper()} r&d <LAB>") == [f"{tag} R&amp;D &lt;lab&gt;"]


async def test_searches_fired_together_by_one_user_cannot_take_the_node(
    search_node: RunningServer,
) -> None:
    """Beyond the user's running calls, more are 429 at once; another user is served.

    A hundred slow searches fired together by one user held the whole database pool:
    other users waited seconds or got 503.
    """
    gate = search_node.server.lifespan.state["gate"]  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=search_node.base_url, timeout=60) as http:
        greedy, other = await account(http), await account(http)
        group = str((await create_group(http, greedy))["id"])
        db = search_node.node.resources.db
        await many_messages(db, group, greedy.id, 20_000, lambda seq: f"line {seq} of a study log")
        gate.running_per_user = 2
        try:
            answers = await asyncio.gather(
                *(
                    http.get(
                        f"{GROUPS}/{group}/messages",
                        headers=greedy.headers,
                        params={"search": "xq"},
                    )
                    for _ in range(12)
                ),
                http.get("/api/v1/users/me", headers=other.headers),
            )
        finally:
            gate.running_per_user = 10
    *searches, served = answers
    assert served.status_code == 200
    statuses = sorted(answer.status_code for answer in searches)
    assert 200 in statuses and 429 in statuses and set(statuses) == {200, 429}, statuses
    refused = next(answer for answer in searches if answer.status_code == 429)
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "1"
    assert "X-RateLimit-Limit" in refused.headers  # the admission's, as every limited answer
    assert all(a.json()["pagination"]["total"] == 0 for a in searches if a.status_code == 200)
