"""The socket protocol's contract, run against the Redis-backed node and the embedded one."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.factories.groups import public_group
from tests.factories.users import account
from tests.fixtures.server import RunningServer
from tests.fixtures.wsclient import MSGPACK, socket
from tests.integration.conftest import Realtime


async def test_auth_then_ready(rt: Realtime) -> None:
    """The first frame authenticates; ready carries the user, a session and the heartbeat."""
    user = await account(rt.http)
    async with socket(rt.ws, user.token) as ws:
        assert ws.ready["user_id"] == user.id
        assert ws.ready["session_id"] and ws.ready["heartbeat_s"] > 0
        await ws.send({"type": "ping", "ref": "p1"})
        assert await ws.expect("pong") == {"type": "pong", "ref": "p1"}


async def test_first_frame_must_be_auth(rt: Realtime) -> None:
    """Anything else first, or a bad token, closes with 4001."""
    async with socket(rt.ws) as ws:
        await ws.send({"type": "ping"})
        assert await ws.closed_with() == 4001
    async with socket(rt.ws) as ws:
        await ws.send({"type": "auth", "token": "not-a-token"})
        assert await ws.closed_with() == 4001


async def test_token_in_query_string_is_ignored(rt: Realtime) -> None:
    """A token in the URL authenticates nothing."""
    user = await account(rt.http)
    async with socket(f"{rt.ws}?token={user.token}") as ws:
        await ws.send({"type": "ping"})
        assert await ws.closed_with() == 4001


async def test_send_acks_and_fans_out_in_order(rt: Realtime) -> None:
    """Subscribers get every message in seq order; the sender gets acks with the same seqs."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a, socket(rt.ws, bob.token) as b:
        sub = await b.subscribe(group)
        assert sub["last_seq"] == 0 and sub["recovered"] is False
        acks = [await a.send_message(group, f"m{i}", f"c{i}") for i in range(5)]
        assert [ack["seq"] for ack in acks] == [1, 2, 3, 4, 5]
        got = await b.collect("message", 5)
        assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
        assert (
            got[0]["body"] == "m0"
            and got[0]["author_id"] == alice.id
            and got[0]["client_msg_id"] == "c0"
        )
        assert got[0]["message_id"] == acks[0]["message_id"]


async def test_repeated_client_msg_id_gets_the_first_ack_only(rt: Realtime) -> None:
    """A resend returns the first ack and nothing new reaches subscribers."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a, socket(rt.ws, bob.token) as b:
        await b.subscribe(group)
        first = await a.send_message(group, "hello", "same")
        again = await a.send_message(group, "hello again", "same")
        assert again == first
        await b.expect("message", seq=1)
        assert await b.silent("message")


async def test_rest_and_socket_share_idempotency(rt: Realtime) -> None:
    """The same client_msg_id over REST after a socket send returns the first message."""
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as a:
        ack = await a.send_message(group, "over the socket", "shared-1")
    response = await rt.http.post(
        f"/api/v1/study-groups/{group}/messages",
        headers=alice.headers,
        json={"body": "over REST", "client_msg_id": "shared-1"},
    )
    assert response.status_code == 200
    assert (
        response.json()["data"]["id"] == ack["message_id"]
        and response.json()["data"]["body"] == "over the socket"
    )


async def test_subscribing_is_not_needed_to_send_and_non_members_get_not_found(
    rt: Realtime,
) -> None:
    """A member sends without subscribing; a stranger gets NOT_FOUND and stays connected."""
    alice, stranger = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as a, socket(rt.ws, stranger.token) as s:
        assert (await a.send_message(group, "hi", "c1"))["seq"] == 1
        await s.send({"type": "subscribe", "group_id": group, "ref": 7})
        error = await s.expect("error")
        assert error == {
            "type": "error",
            "code": "NOT_FOUND",
            "message": error["message"],
            "ref": 7,
        }
        await s.send(
            {"type": "send", "group_id": group, "body": "x", "client_msg_id": "z", "ref": 8}
        )
        assert (await s.expect("error"))["code"] == "NOT_FOUND"
        await s.send({"type": "ping"})
        await s.expect("pong")


async def test_bad_frames_get_errors_and_the_socket_stays(rt: Realtime) -> None:
    """Non-object JSON, unknown types, bad fields, 4,001-character bodies: VALIDATION_ERROR."""
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as ws:
        await ws.ws.send("[1, 2]")
        assert (await ws.expect("error"))["code"] == "VALIDATION_ERROR"
        await ws.send({"type": "dance", "ref": "r1"})
        assert (await ws.expect("error"))["ref"] == "r1"
        await ws.send(
            {"type": "send", "group_id": "nope", "body": "x", "client_msg_id": "c", "ref": 2}
        )
        assert (await ws.expect("error"))["code"] == "VALIDATION_ERROR"
        await ws.send(
            {"type": "send", "group_id": group, "body": "x" * 4001, "client_msg_id": "c", "ref": 3}
        )
        assert (await ws.expect("error", ref=3))["code"] == "VALIDATION_ERROR"
        await ws.send(
            {"type": "send", "group_id": group, "body": "   ", "client_msg_id": "c", "ref": 4}
        )
        assert (await ws.expect("error", ref=4))["code"] == "VALIDATION_ERROR"
        await ws.send({"type": "unsubscribe", "group_id": group, "ref": 5})
        assert (await ws.expect("error", ref=5))["code"] == "NOT_SUBSCRIBED"
        assert (await ws.send_message(group, "x" * 4000, "max"))["seq"] == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [("{not json", 4000), (b"\x00binary", 1003), ("x" * 70_000, 1009)],
)
async def test_fatal_frames_close_with_their_code(
    rt: Realtime, payload: str | bytes, code: int
) -> None:
    """Unparseable 4000, binary on the JSON subprotocol 1003, over 64 KiB 1009."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token) as ws:
        await ws.ws.send(payload)
        assert await ws.closed_with() == code


async def test_a_cut_emoji_is_a_validation_error_not_a_close(rt: Realtime) -> None:
    """A body ending in half a surrogate pair (valid JSON, not text): VALIDATION_ERROR."""
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as ws:
        frame = '"type":"send","body":"cut \\ud83d","client_msg_id":"c1","ref":"s"'
        await ws.ws.send(f'{{{frame},"group_id":"{group}"}}')
        error = await ws.expect("error", ref="s")
        assert error["code"] == "VALIDATION_ERROR"
        await ws.send({"type": "ping", "ref": "alive"})
        assert (await ws.expect("pong"))["ref"] == "alive"


async def test_a_control_character_in_client_msg_id_is_a_validation_error(rt: Realtime) -> None:
    """A NUL in client_msg_id (PostgreSQL cannot store it) is refused, not acked.

    It was acked, and the message then blocked the persister for every group behind it.
    """
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as ws:
        for ref, cmid in (("nul", "a\x00b"), ("c1", "c\x9b1")):
            await ws.send(
                {"type": "send", "group_id": group, "body": "hi", "client_msg_id": cmid, "ref": ref}
            )
            error = await ws.expect("error", ref=ref)
            assert error["code"] == "VALIDATION_ERROR" and "client_msg_id" in error["message"]
        await ws.send({"type": "ping", "ref": "alive"})
        assert (await ws.expect("pong"))["ref"] == "alive"


async def test_invalid_utf8_closes_with_1007(
    rt: Realtime, caplog: pytest.LogCaptureFixture
) -> None:
    """A text frame that is not UTF-8 closes with 1007; the node logs no error for it."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token) as ws:
        ws.ws.protocol.send_text(b"\xff\xfe")
        ws.ws.send_data()
        assert await ws.closed_with() == 1007
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_msgpack_subprotocol(rt: Realtime) -> None:
    """The MessagePack subprotocol carries the same frames in binary."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token, subprotocol=MSGPACK) as a, socket(rt.ws, bob.token) as b:
        assert a.ws.subprotocol == MSGPACK
        await b.subscribe(group)
        ack = await a.send_message(group, "packed", "p1")
        assert ack["seq"] == 1 and isinstance(ack["message_id"], str)
        assert (await b.expect("message"))["body"] == "packed"
        await a.ws.send('{"type": "ping"}')
        assert await a.closed_with() == 1003


async def test_browser_origin_must_be_allowed(rt: Realtime) -> None:
    """A browser Origin not in CORS_ORIGINS is refused with 403 at the handshake."""
    with pytest.raises(InvalidStatus) as refused:
        async with socket(rt.ws, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_fourth_socket_is_refused_with_4009(rt: Realtime) -> None:
    """Three sockets per user; the fourth closes with 4009 instead of ready."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token), socket(rt.ws, alice.token), socket(rt.ws, alice.token):
        async with socket(rt.ws) as fourth:
            await fourth.send({"type": "auth", "token": alice.token})
            assert await fourth.closed_with() == 4009
    async with socket(rt.ws, alice.token) as again:  # slots come back when sockets close
        assert again.ready["user_id"] == alice.id


async def test_presence_online_and_offline(rt: Realtime) -> None:
    """A subscriber is in its own online list; others see online, then offline when it leaves."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a:
        sub = await a.subscribe(group)
        assert alice.id in sub["online"]
        async with socket(rt.ws, bob.token) as b:
            assert set((await b.subscribe(group))["online"]) == {alice.id, bob.id}
            assert (await a.expect("presence", user_id=bob.id))["status"] == "online"
        assert (await a.expect("presence", user_id=bob.id))["status"] == "offline"


async def test_typing_is_throttled_and_not_echoed(rt: Realtime) -> None:
    """Other subscribers get one typing frame per 2 s; the typer gets none."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a, socket(rt.ws, bob.token) as b:
        await a.subscribe(group)
        await b.subscribe(group)
        for _ in range(3):
            await a.send({"type": "typing", "group_id": group})
        assert (await b.expect("typing"))["user_id"] == alice.id
        assert await b.silent("typing", 0.5)
        assert await a.silent("typing", 0.2)


async def test_read_marker_reaches_the_users_other_sockets(rt: Realtime) -> None:
    """A read frame moves the marker; the user's other socket is told, unread drops."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a:
        for i in range(3):
            await a.send_message(group, f"m{i}", f"c{i}")
    await asyncio.sleep(0.3)
    async with socket(rt.ws, bob.token) as phone, socket(rt.ws, bob.token) as laptop:
        await phone.send({"type": "read", "group_id": group, "seq": 2})
        assert await laptop.expect("read") == {"type": "read", "group_id": group, "seq": 2}
        assert await phone.silent("read", 0.3)
    unread = (await rt.http.get("/api/v1/users/me/unread", headers=bob.headers)).json()["data"]
    mine = next(u for u in unread if u["group_id"] == group)
    assert mine == {"group_id": group, "unread": 1, "last_seq": 3, "last_read_seq": 2}


async def test_recovery_replays_exactly_what_was_missed(rt: Realtime) -> None:
    """Reconnect with since_seq: the 20 missed messages in order, then recovered: true."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, bob.token) as b:
        await b.subscribe(group)
    async with socket(rt.ws, alice.token) as a:
        for i in range(20):
            await a.send_message(group, f"missed {i}", f"m{i}")
    async with socket(rt.ws, bob.token) as b:
        await b.send({"type": "subscribe", "group_id": group, "since_seq": 0})
        frames = [await b.recv() for _ in range(21)]
        frames = [f for f in frames if f["type"] in ("message", "subscribed")]
        assert [f["seq"] for f in frames if f["type"] == "message"] == list(range(1, 21))
        assert frames[-1]["type"] == "subscribed" and frames[-1]["recovered"] is True
        assert frames[-1]["last_seq"] == 20


async def test_recovery_from_a_later_point_and_when_up_to_date(rt: Realtime) -> None:
    """since_seq=15 replays 16..20; since_seq at the head replays nothing and is recovered."""
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as a:
        for i in range(20):
            await a.send_message(group, f"m{i}", f"m{i}")
        sub = await a.subscribe(group, since_seq=15)
        assert sub["recovered"] is True and sub["last_seq"] == 20
    async with socket(rt.ws, alice.token) as a:
        await a.send({"type": "subscribe", "group_id": group, "since_seq": 15})
        replayed = [await a.expect("message") for _ in range(5)]
        assert [m["seq"] for m in replayed] == [16, 17, 18, 19, 20]
        await a.send({"type": "subscribe", "group_id": group, "since_seq": 20})
        assert (await a.expect("subscribed"))["recovered"] is True


@pytest.mark.parametrize("ahead", [1, 4, 2**63 - 1])
async def test_a_since_seq_past_the_last_seq_loses_nothing_that_follows(
    rt: Realtime, ahead: int
) -> None:
    """A client ahead of the log (an off-by-one, a restore) gets recovered: false, then all."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a, socket(rt.ws, bob.token) as b:
        await a.send_message(group, "before", "m0")
        sub = await b.subscribe(group, since_seq=1 + ahead)
        assert (sub["recovered"], sub["last_seq"]) == (False, 1)
        for i in range(1, 6):
            await a.send_message(group, f"after {i}", f"m{i}")
        assert [m["seq"] for m in await b.collect("message", 5)] == [2, 3, 4, 5, 6]


async def test_a_handover_tells_the_members_of_both_roles(rt: Realtime) -> None:
    """Handing the group over: a member hears the new owner and the old owner, now admin."""
    alice, bob, carol = await account(rt.http), await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob, carol)
    async with socket(rt.ws, carol.token) as watcher:
        handed = await rt.http.patch(
            f"/api/v1/study-groups/{group}/members/{bob.id}",
            headers=alice.headers,
            json={"role": "owner"},
        )
        assert handed.status_code == 200
        notices = [await watcher.expect("member", action="role_changed") for _ in range(2)]
        assert {(n["user_id"], n["role"]) for n in notices} == {
            (alice.id, "admin"),
            (bob.id, "owner"),
        }


async def test_a_subscriber_is_not_told_of_its_own_arrival(rt: Realtime) -> None:
    """``subscribed`` lists you online; no ``presence`` frame about you follows. Others' do."""
    alice, bob = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob)
    async with socket(rt.ws, alice.token) as a:
        assert alice.id in (await a.subscribe(group))["online"]
        async with socket(rt.ws, bob.token) as b:
            await b.subscribe(group)
            came = await a.expect("presence", user_id=bob.id)
            assert came["status"] == "online"
            with contextlib.suppress(TimeoutError):
                while True:  # what reaches bob's socket in the next 0.6 s
                    b.pending.append(await b.recv(timeout=0.6))
        about_self = [
            frame
            for ws, me in ((a, alice.id), (b, bob.id))
            for frame in ws.pending
            if frame["type"] == "presence" and frame["user_id"] == me
        ]
        assert about_self == []


async def test_kicked_member_stops_receiving_at_once(rt: Realtime) -> None:
    """After a kick the member's socket gets unsubscribed and nothing more of the group."""
    owner, member = await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, owner, member)
    async with socket(rt.ws, owner.token) as o, socket(rt.ws, member.token) as m:
        await m.subscribe(group)
        kicked = await rt.http.delete(
            f"/api/v1/study-groups/{group}/members/{member.id}", headers=owner.headers
        )
        assert kicked.status_code == 204
        await m.expect("unsubscribed", group_id=group)
        notice = await m.expect("member")
        assert notice["action"] == "kicked" and notice["user_id"] == member.id
        await o.send_message(group, "after the kick", "k1")
        assert await m.silent("message", 0.5)
        await m.send(
            {"type": "send", "group_id": group, "body": "let me in", "client_msg_id": "x", "ref": 1}
        )
        assert (await m.expect("error", ref=1))["code"] == "NOT_FOUND"


async def test_user_directed_events(rt: Realtime) -> None:
    """Invites, assignments, member changes and message edits/deletes reach sockets live."""
    owner, member, invitee = await account(rt.http), await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, owner, member)
    async with socket(rt.ws, member.token) as m, socket(rt.ws, invitee.token) as i:
        await m.subscribe(group)
        invite = await rt.http.post(
            f"/api/v1/study-groups/{group}/invites",
            headers=owner.headers,
            json={"user_id": invitee.id},
        )
        assert (await i.expect("invite"))["invite"]["id"] == invite.json()["data"]["id"]
        await rt.http.post(
            f"/api/v1/study-groups/{group}/assignments",
            headers=owner.headers,
            json={"title": "PS", "due_at": "2027-01-01T00:00:00Z"},
        )
        assert (await m.expect("assignment"))["action"] == "created"
        await rt.http.post(
            f"/api/v1/invites/{invite.json()['data']['id']}/accept", headers=invitee.headers
        )
        joined = await m.expect("member", action="joined")
        assert joined["user_id"] == invitee.id and joined["role"] == "member"
        posted = await rt.http.post(
            f"/api/v1/study-groups/{group}/messages",
            headers=member.headers,
            json={"body": "v1", "client_msg_id": "e"},
        )
        message_id = posted.json()["data"]["id"]
        await rt.http.patch(
            f"/api/v1/study-groups/{group}/messages/{message_id}",
            headers=member.headers,
            json={"body": "v2"},
        )
        edited = await m.expect("message_edited")
        assert edited["body"] == "v2" and edited["seq"] == 1
        await rt.http.delete(
            f"/api/v1/study-groups/{group}/messages/{message_id}", headers=owner.headers
        )
        assert (await m.expect("message_deleted"))["message_id"] == message_id


async def test_refresh_in_band(rt: Realtime) -> None:
    """A refresh frame with a fresh token answers ready again; a bad token closes with 4001."""
    alice = await account(rt.http)
    login = await rt.http.post(
        "/api/v1/auth/login", json={"email": alice.email, "password": alice.password}
    )
    async with socket(rt.ws, alice.token) as ws:
        await ws.send(
            {"type": "refresh", "token": login.json()["data"]["access_token"], "ref": "r"}
        )
        again = await ws.expect("ready")
        assert again["user_id"] == alice.id and again["ref"] == "r"
        await ws.send({"type": "refresh", "token": "garbage"})
        assert await ws.closed_with() == 4001


async def test_password_change_closes_the_users_sockets(rt: Realtime) -> None:
    """Changing the password ends every socket of the user with 4001."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token) as ws:
        changed = await rt.http.put(
            "/api/v1/users/me/password",
            headers=alice.headers,
            json={"current_password": alice.password, "new_password": "quite-another-passphrase"},
        )
        assert changed.status_code == 200
        assert await ws.closed_with() == 4001


async def test_flooding_after_rate_limited_closes_with_4008(rt: Realtime) -> None:
    """Past the message rate: RATE_LIMITED errors, then 4008 if the client keeps going."""
    alice = await account(rt.http)
    group = await public_group(rt.http, alice)
    async with socket(rt.ws, alice.token) as ws:
        for i in range(60):
            await ws.send(
                {"type": "send", "group_id": group, "body": "spam", "client_msg_id": f"s{i}"}
            )
        assert (await ws.expect("error", code="RATE_LIMITED"))["message"]
        assert await ws.closed_with() == 4008


async def test_invalid_frames_keep_the_socket_open(rt: Realtime) -> None:
    """VALIDATION_ERROR keeps the socket open: a dozen bad frames, then a ping is answered."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token) as ws:
        for i in range(12):
            await ws.send({"type": "subscribe", "group_id": "not-a-uuid", "ref": f"bad-{i}"})
            assert (await ws.expect("error", code="VALIDATION_ERROR"))["ref"] == f"bad-{i}"
        await ws.send({"type": "ping", "ref": "still-here"})
        assert (await ws.expect("pong"))["ref"] == "still-here"


async def test_a_flood_of_invalid_frames_is_closed_with_4008(rt: Realtime) -> None:
    """Bad frames spend the frame budget: past it RATE_LIMITED, then a real 4008 close frame."""
    alice = await account(rt.http)
    async with socket(rt.ws, alice.token) as ws:
        for _ in range(200):
            await ws.send({"type": "no-such-type"})
        assert (await ws.expect("error", code="RATE_LIMITED"))["message"]
        assert await ws.closed_with() == 4008


async def test_presence_can_be_asked_for_as_batched_diffs_or_not_at_all(rt: Realtime) -> None:
    """'diff' subscribers get presence_diff batches; 'none' subscribers get no presence."""
    alice, bob, carol = await account(rt.http), await account(rt.http), await account(rt.http)
    group = await public_group(rt.http, alice, bob, carol)
    async with (
        socket(rt.ws, alice.token) as batched,
        socket(rt.ws, carol.token, subprotocol=MSGPACK) as quiet,
    ):
        await batched.subscribe(group, presence="diff")
        await quiet.subscribe(group, presence="none")
        async with socket(rt.ws, bob.token) as b:
            joined = await b.subscribe(group)
            assert {alice.id, bob.id, carol.id} <= set(joined["online"])
            came = await batched.expect("presence_diff", timeout=5)
            assert came["group_id"] == group and bob.id in came["online"]
        went = await batched.expect("presence_diff", timeout=5)
        assert went["offline"] == [bob.id] and went["online"] == []
        assert await quiet.silent("presence", wait=0.6)
        assert await quiet.silent("presence_diff", wait=0.1)


async def test_a_bug_behind_a_frame_is_answered_and_keeps_the_socket(
    node: RunningServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception: INTERNAL_ERROR for that frame (logged), the socket lives on."""
    user = await account(client)
    group = await public_group(client, user)

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    async with socket(f"{node.ws_url}/api/v1/ws", user.token) as ws:
        monkeypatch.setattr(node.domain.messages, "mark_read", broken)
        await ws.send({"type": "read", "group_id": group, "seq": 1, "ref": "r1"})
        error = await ws.expect("error", ref="r1")
        assert error["code"] == "INTERNAL_ERROR" and "a bug" not in error["message"]
        await ws.send({"type": "ping", "ref": "p1"})
        assert await ws.expect("pong") == {"type": "pong", "ref": "p1"}


async def test_a_bug_at_auth_closes_with_1011(
    node: RunningServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while authenticating closes with 1011, not a cut connection."""
    user = await account(client)

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(node.node, "authenticate", broken)
    async with socket(f"{node.ws_url}/api/v1/ws") as ws:
        await ws.send({"type": "auth", "token": user.token})
        assert await ws.closed_with() == 1011
