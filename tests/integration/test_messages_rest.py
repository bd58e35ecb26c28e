"""Messages over REST: sending, idempotency, sanitising, history, edits, deletes, read state."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.factories.groups import GROUPS, add_member, create_group, invite, post_message, set_role
from tests.factories.users import Account, account

UNREAD = "/api/v1/users/me/unread"


def error_code(response: httpx.Response) -> str:
    """The contract error code of an error response."""
    code: str = response.json()["error"]["code"]
    return code


async def pair(client: httpx.AsyncClient) -> tuple[str, Account, Account]:
    """A private group of two (owner alice, member bob); returns its id."""
    alice, bob = await account(client), await account(client)
    group = await create_group(client, alice, visibility="private")
    await add_member(client, alice, group["id"], bob)
    return group["id"], alice, bob


async def send(
    client: httpx.AsyncClient, user: Account, group_id: str, body: str, cmid: str | None = None
) -> httpx.Response:
    """POST a message with ``body`` (and a fresh client_msg_id unless given)."""
    return await client.post(
        f"{GROUPS}/{group_id}/messages",
        headers=user.headers,
        json={"body": body, "client_msg_id": cmid or uuid.uuid4().hex},
    )


async def history(
    client: httpx.AsyncClient, user: Account, group_id: str, **params: str
) -> dict[str, Any]:
    """GET the group's messages; assert 200 and return the body."""
    response = await client.get(
        f"{GROUPS}/{group_id}/messages", headers=user.headers, params=params
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def seqs(body: dict[str, Any]) -> list[int]:
    """The seqs of a history page, in order."""
    return [m["seq"] for m in body["data"]]


async def unread(client: httpx.AsyncClient, user: Account) -> dict[str, dict[str, Any]]:
    """GET /users/me/unread keyed by group id."""
    response = await client.get(UNREAD, headers=user.headers)
    assert response.status_code == 200, response.text
    return {row["group_id"]: row for row in response.json()["data"]}


async def mark(client: httpx.AsyncClient, user: Account, group_id: str, seq: int) -> httpx.Response:
    """PUT /study-groups/{id}/read."""
    return await client.put(f"{GROUPS}/{group_id}/read", headers=user.headers, json={"seq": seq})


# --- sending ------------------------------------------------------------------------------


async def test_post_assigns_gapless_seqs(client: httpx.AsyncClient) -> None:
    """Three posts by two members get seq 1, 2, 3 and come back whole with 201."""
    gid, alice, bob = await pair(client)
    first = await send(client, alice, gid, "hello", "cm-1")
    assert first.status_code == 201 and first.json()["message"] == "Created"
    message = first.json()["data"]
    assert set(message) == {
        "id",
        "group_id",
        "seq",
        "author_id",
        "body",
        "client_msg_id",
        "created_at",
        "edited_at",
    }
    assert message["seq"] == 1 and message["group_id"] == gid and message["author_id"] == alice.id
    assert message["body"] == "hello" and message["client_msg_id"] == "cm-1"
    assert message["edited_at"] is None and message["created_at"].endswith("Z")
    second = await post_message(client, bob, gid)
    third = await post_message(client, alice, gid)
    assert [message["seq"], second["seq"], third["seq"]] == [1, 2, 3]
    stored = await history(client, bob, gid, sort="seq")
    assert stored["data"] == [message, second, third]


async def test_repeated_client_msg_id_returns_the_first_message(client: httpx.AsyncClient) -> None:
    """The same client_msg_id from the same user and group is 200 with the first message."""
    gid, alice, bob = await pair(client)
    first = await send(client, alice, gid, "original", "retry-me")
    assert first.status_code == 201
    again = await send(client, alice, gid, "changed on retry", "retry-me")
    assert again.status_code == 200, again.text
    assert again.json()["message"] == "Success"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again.json()["data"]["seq"] == 1 and again.json()["data"]["body"] == "original"
    other_user = await send(client, bob, gid, "mine", "retry-me")
    assert other_user.status_code == 201 and other_user.json()["data"]["seq"] == 2
    other_group = await create_group(client, alice)
    elsewhere = await send(client, alice, other_group["id"], "there", "retry-me")
    assert elsewhere.status_code == 201 and elsewhere.json()["data"]["seq"] == 1
    assert seqs(await history(client, alice, gid, sort="seq")) == [1, 2]


async def test_a_repeat_of_a_deleted_message_shows_nothing_of_it(
    client: httpx.AsyncClient,
) -> None:
    """Retrying a send whose message was deleted since: 409, and its text is not shown."""
    gid, alice, _ = await pair(client)
    first = (await send(client, alice, gid, "regrettable", "retry-me")).json()["data"]
    deleted = await client.delete(f"{GROUPS}/{gid}/messages/{first['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    again = await send(client, alice, gid, "regrettable", "retry-me")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "CONFLICT" and "regrettable" not in again.text
    assert seqs(await history(client, alice, gid, sort="seq")) == []


async def test_body_and_client_msg_id_limits(client: httpx.AsyncClient) -> None:
    """4,000 characters are accepted; 4,001, empty, whitespace-only and bad ids are 400."""
    gid, alice, _ = await pair(client)
    exact = await send(client, alice, gid, "x" * 4000)
    assert exact.status_code == 201 and len(exact.json()["data"]["body"]) == 4000
    for body in ("x" * 4001, "", "   \n\t  "):
        response = await send(client, alice, gid, body)
        assert response.status_code == 400, repr(body[:10])
        assert error_code(response) == "VALIDATION_ERROR"
        assert response.json()["error"]["details"]["fields"][0]["field"] == "body"
    for cmid in ("", "c" * 65, "a\x00b", "tab\there", "c1\x85"):
        bad = await client.post(
            f"{GROUPS}/{gid}/messages",
            headers=alice.headers,
            json={"body": "hi", "client_msg_id": cmid},
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["details"]["fields"][0]["field"] == "client_msg_id"
    missing = await client.post(
        f"{GROUPS}/{gid}/messages", headers=alice.headers, json={"body": "hi"}
    )
    assert missing.status_code == 400
    assert seqs(await history(client, alice, gid)) == [1]


async def test_body_is_sanitised_escaped_and_normalised(client: httpx.AsyncClient) -> None:
    """HTML is escaped, control characters (but newline and tab) removed, text NFC-normalised."""
    gid, alice, bob = await pair(client)
    script = await send(client, alice, gid, "<script>alert(1)</script>")
    assert script.json()["data"]["body"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    controls = await send(client, alice, gid, "a\x00b\x07c\x1bd\x7fe\x85f\nline\ttab\r")
    assert controls.json()["data"]["body"] == "abcdef\nline\ttab"
    nfc = await send(client, alice, gid, "caf" + "e\u0301" + " \"quoted\" 'single' & co")
    assert nfc.json()["data"]["body"] == "caf\u00e9 &quot;quoted&quot; &#x27;single&#x27; &amp; co"
    served = await history(client, bob, gid, sort="seq")
    assert [m["body"] for m in served["data"]] == [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "abcdef\nline\ttab",
        "caf\u00e9 &quot;quoted&quot; &#x27;single&#x27; &amp; co",
    ]


async def test_length_is_counted_as_sent(client: httpx.AsyncClient) -> None:
    """Limits count code points as sent (the document's maxLength): controls and NFD pairs count.

    Issue 16: counting after cleaning accepted bodies longer than the documented 4,000.
    """
    gid, alice, _ = await pair(client)
    with_controls = await send(client, alice, gid, "y" * 3998 + "\x00\x00")
    assert with_controls.status_code == 201, with_controls.text
    assert with_controls.json()["data"]["body"] == "y" * 3998
    too_long = await send(client, alice, gid, "y" * 4000 + "\x00")
    assert too_long.status_code == 400, too_long.text
    decomposed = "e\u0301" * 2000  # 4,000 code points as sent, 2,000 after NFC
    nfd = await send(client, alice, gid, decomposed)
    assert nfd.status_code == 201, nfd.text
    assert nfd.json()["data"]["body"] == "\u00e9" * 2000
    assert (await send(client, alice, gid, decomposed + "e")).status_code == 400


async def test_outsiders_cannot_post(client: httpx.AsyncClient) -> None:
    """Posting to a private group you are not in is 404; to a public one 403."""
    gid, alice, _ = await pair(client)
    eve = await account(client)
    private = await send(client, eve, gid, "let me in")
    assert private.status_code == 404 and error_code(private) == "NOT_FOUND"
    public = await create_group(client, alice, visibility="public")
    response = await send(client, eve, public["id"], "hello?")
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    assert (await history(client, alice, gid))["data"] == []


# --- history ------------------------------------------------------------------------------


async def test_history_order_windows_search_and_pages(client: httpx.AsyncClient) -> None:
    """Newest first by default, sort=seq oldest first, after/before_seq exclusive, search, pages."""
    gid, alice, bob = await pair(client)
    word = uuid.uuid4().hex[:8]
    for n in range(1, 7):
        body = f"note {n} about {word.upper()}" if n in (2, 5) else f"note {n}"
        await post_message(client, alice if n % 2 else bob, gid, body)
    newest = await history(client, bob, gid)
    assert seqs(newest) == [6, 5, 4, 3, 2, 1]
    assert newest["pagination"] == {"page": 1, "page_size": 20, "total": 6, "total_pages": 1}
    assert seqs(await history(client, bob, gid, sort="seq")) == [1, 2, 3, 4, 5, 6]
    assert seqs(await history(client, bob, gid, sort="-seq")) == [6, 5, 4, 3, 2, 1]
    assert seqs(await history(client, bob, gid, after_seq="2", sort="seq")) == [3, 4, 5, 6]
    assert seqs(await history(client, bob, gid, before_seq="4")) == [3, 2, 1]
    window = await history(client, bob, gid, after_seq="2", before_seq="5")
    assert seqs(window) == [4, 3] and window["pagination"]["total"] == 2
    assert seqs(await history(client, bob, gid, after_seq="6")) == []
    found = await history(client, bob, gid, search=word.lower())
    assert seqs(found) == [5, 2]
    pages = [
        seqs(await history(client, bob, gid, sort="seq", page_size="4", page=str(p)))
        for p in (1, 2, 3)
    ]
    assert pages == [[1, 2, 3, 4], [5, 6], []]
    past = await history(client, bob, gid, page_size="4", page="3")
    assert past["pagination"] == {"page": 3, "page_size": 4, "total": 6, "total_pages": 2}
    by_time = await history(client, bob, gid, sort="created_at,seq")  # created_at is in ms
    assert seqs(by_time) == [1, 2, 3, 4, 5, 6]


async def test_history_rejects_bad_parameters(client: httpx.AsyncClient) -> None:
    """after_seq=abc, before_seq=-1, unknown sorts and filters, bad pages: 400."""
    gid, alice, _ = await pair(client)
    for params, field in (
        ({"after_seq": "abc"}, "after_seq"),
        ({"before_seq": "-1"}, "before_seq"),
        ({"after_seq": "1.5"}, "after_seq"),
        ({"after_seq": "1" * 4301}, "after_seq"),  # past int()'s digit limit: was a 500
        ({"before_seq": "0" * 30 + "1"}, "before_seq"),
        ({"created_after": "9999-12-31T23:59:59-00:01"}, "created_after"),  # was a 500
        ({"sort": "body"}, "sort"),
        ({"filter[author]": alice.id}, "filter[author]"),
        ({"page": "0"}, "page"),
        ({"page_size": "101"}, "page_size"),
    ):
        response = await client.get(
            f"{GROUPS}/{gid}/messages", headers=alice.headers, params=params
        )
        assert response.status_code == 400, params
        fields = [p["field"] for p in response.json()["error"]["details"]["fields"]]
        assert field in fields, (params, fields)


# --- edits and deletes --------------------------------------------------------------------


async def test_author_edits_others_cannot(client: httpx.AsyncClient) -> None:
    """The author's PATCH is 200 with edited_at set; another member, even the owner, 403."""
    gid, alice, bob = await pair(client)
    message = await post_message(client, bob, gid, "first draft")
    url = f"{GROUPS}/{gid}/messages/{message['id']}"
    edited = await client.patch(url, headers=bob.headers, json={"body": "second <draft>"})
    assert edited.status_code == 200, edited.text
    data = edited.json()["data"]
    assert data["body"] == "second &lt;draft&gt;" and data["edited_at"] is not None
    assert data["edited_at"].endswith("Z") and data["edited_at"] >= data["created_at"]
    assert (data["id"], data["seq"], data["created_at"]) == (
        message["id"],
        message["seq"],
        message["created_at"],
    )
    by_owner = await client.patch(url, headers=alice.headers, json={"body": "owner's words"})
    assert by_owner.status_code == 403 and error_code(by_owner) == "FORBIDDEN"
    carol = await account(client)
    await add_member(client, alice, gid, carol)
    by_member = await client.patch(url, headers=carol.headers, json={"body": "not mine"})
    assert by_member.status_code == 403
    blank = await client.patch(url, headers=bob.headers, json={"body": "  "})
    assert blank.status_code == 400
    unknown = await client.patch(
        f"{GROUPS}/{gid}/messages/{uuid.uuid4()}", headers=bob.headers, json={"body": "x"}
    )
    assert unknown.status_code == 404
    shown = (await history(client, alice, gid))["data"]
    assert [(m["body"], m["edited_at"]) for m in shown] == [(data["body"], data["edited_at"])]


async def test_delete_rules_and_tombstones(client: httpx.AsyncClient) -> None:
    """Authors and admins delete (204); a plain member cannot delete another's (403)."""
    gid, alice, bob = await pair(client)
    carol, dave = await account(client), await account(client)
    await add_member(client, alice, gid, carol)
    await add_member(client, alice, gid, dave)
    await set_role(client, alice, gid, carol, "admin")
    own = await post_message(client, bob, gid, "bob 1")
    for_admin = await post_message(client, bob, gid, "bob 2")
    kept = await post_message(client, bob, gid, "bob 3")
    admins = await post_message(client, carol, gid, "carol 1")
    base = f"{GROUPS}/{gid}/messages"
    assert (await client.delete(f"{base}/{kept['id']}", headers=dave.headers)).status_code == 403
    assert (await client.delete(f"{base}/{own['id']}", headers=bob.headers)).status_code == 204
    by_admin = await client.delete(f"{base}/{for_admin['id']}", headers=carol.headers)
    assert by_admin.status_code == 204
    by_owner = await client.delete(f"{base}/{admins['id']}", headers=alice.headers)
    assert by_owner.status_code == 204
    remaining = await history(client, dave, gid, sort="seq")
    assert [m["id"] for m in remaining["data"]] == [kept["id"]]
    assert remaining["pagination"]["total"] == 1
    again = await client.delete(f"{base}/{own['id']}", headers=bob.headers)
    assert again.status_code == 404
    edit = await client.patch(f"{base}/{own['id']}", headers=bob.headers, json={"body": "back"})
    assert edit.status_code == 404
    nxt = await post_message(client, bob, gid, "bob 4")
    assert nxt["seq"] == 5  # seqs of deleted messages are not reused


# --- read markers and unread counts -------------------------------------------------------


async def test_unread_counts_and_read_markers(client: httpx.AsyncClient) -> None:
    """Zeros for quiet groups, own messages not counted, markers never move back."""
    gid, alice, bob = await pair(client)
    quiet = await create_group(client, alice, visibility="private")
    assert await unread(client, alice) == {
        gid: {"group_id": gid, "unread": 0, "last_seq": 0, "last_read_seq": 0},
        quiet["id"]: {"group_id": quiet["id"], "unread": 0, "last_seq": 0, "last_read_seq": 0},
    }
    await post_message(client, bob, gid)
    await post_message(client, bob, gid)
    await post_message(client, alice, gid)
    counts = await unread(client, alice)
    assert counts[gid] == {"group_id": gid, "unread": 2, "last_seq": 3, "last_read_seq": 0}
    assert counts[quiet["id"]]["unread"] == 0 and counts[quiet["id"]]["last_seq"] == 0
    assert (await unread(client, bob))[gid]["unread"] == 1
    marked = await mark(client, alice, gid, 2)
    assert marked.status_code == 200, marked.text
    assert marked.json()["data"] == {"group_id": gid, "last_read_seq": 2}
    assert (await unread(client, alice))[gid]["unread"] == 0  # seq 3 is alice's own
    assert (await mark(client, alice, gid, 3)).json()["data"]["last_read_seq"] == 3
    back = await mark(client, alice, gid, 1)
    assert back.status_code == 200 and back.json()["data"]["last_read_seq"] == 3
    assert (await unread(client, alice))[gid]["last_read_seq"] == 3
    bob_view = (await unread(client, bob))[gid]
    assert bob_view == {"group_id": gid, "unread": 1, "last_seq": 3, "last_read_seq": 0}
    await post_message(client, bob, gid)
    assert (await unread(client, alice))[gid] == {
        "group_id": gid,
        "unread": 1,
        "last_seq": 4,
        "last_read_seq": 3,
    }


async def test_read_marker_errors(client: httpx.AsyncClient) -> None:
    """Marking read is 404 for non-members and 400 for a negative or non-integer seq."""
    gid, alice, _ = await pair(client)
    eve = await account(client)
    outsider = await mark(client, eve, gid, 1)
    assert outsider.status_code == 404
    assert eve_has_no_groups(await unread(client, eve))
    for body in ({"seq": -1}, {"seq": "3"}, {}, {"seq": 1, "extra": True}):
        response = await client.put(f"{GROUPS}/{gid}/read", headers=alice.headers, json=body)
        assert response.status_code == 400, body


def eve_has_no_groups(counts: dict[str, dict[str, Any]]) -> bool:
    """True when an unread listing is empty."""
    return counts == {}


# --- the story ----------------------------------------------------------------------------


async def test_story_two_friends_study_privately_and_a_stranger_sees_nothing(
    client: httpx.AsyncClient,
) -> None:
    """Private group: invite, accept, chat, page, read, unread; a third user sees none of it."""
    alice, bob, eve = [await account(client) for _ in range(3)]
    group = await create_group(client, alice, visibility="private", name="Quiet study corner")
    gid = group["id"]
    sent = await invite(client, alice, gid, bob)
    bobs = (await client.get("/api/v1/invites", headers=bob.headers)).json()["data"]
    assert [i["id"] for i in bobs] == [sent["id"]] and bobs[0]["status"] == "pending"
    accepted = await client.post(f"/api/v1/invites/{sent['id']}/accept", headers=bob.headers)
    assert accepted.status_code == 200 and accepted.json()["data"]["role"] == "member"

    for n in range(6):
        await post_message(client, alice if n % 2 == 0 else bob, gid, f"message {n + 1}")
    pages = [
        seqs(await history(client, bob, gid, sort="seq", page_size="2", page=str(p)))
        for p in (1, 2, 3, 4)
    ]
    assert pages == [[1, 2], [3, 4], [5, 6], []]
    latest = await history(client, bob, gid, page_size="2")
    assert seqs(latest) == [6, 5] and latest["pagination"]["total_pages"] == 3
    assert [m["body"] for m in latest["data"]] == ["message 6", "message 5"]

    assert (await unread(client, bob))[gid]["unread"] == 3
    assert (await unread(client, alice))[gid]["unread"] == 3
    assert (await mark(client, bob, gid, 4)).status_code == 200
    assert (await unread(client, bob))[gid] == {
        "group_id": gid,
        "unread": 1,
        "last_seq": 6,
        "last_read_seq": 4,
    }
    assert (await mark(client, bob, gid, 6)).status_code == 200
    assert (await unread(client, bob))[gid]["unread"] == 0
    assert (await mark(client, alice, gid, 6)).status_code == 200
    assert (await unread(client, alice))[gid]["unread"] == 0

    for path in (
        f"{GROUPS}/{gid}",
        f"{GROUPS}/{gid}/members",
        f"{GROUPS}/{gid}/messages",
        f"{GROUPS}/{gid}/assignments",
    ):
        assert (await client.get(path, headers=eve.headers)).status_code == 404, path
    assert (await send(client, eve, gid, "hi all")).status_code == 404
    assert (await mark(client, eve, gid, 6)).status_code == 404
    theirs = await client.post(f"/api/v1/invites/{sent['id']}/accept", headers=eve.headers)
    assert theirs.status_code == 404
    for params in ({"filter[member]": "me"}, {"search": "Quiet study corner"}):
        listing = await client.get(GROUPS, headers=eve.headers, params=params)
        assert gid not in [g["id"] for g in listing.json()["data"]], params
    assert (await client.get("/api/v1/invites", headers=eve.headers)).json()["data"] == []
    assert await unread(client, eve) == {}
    mine = await client.get(GROUPS, headers=bob.headers, params={"filter[member]": "me"})
    assert [g["id"] for g in mine.json()["data"]] == [gid]
