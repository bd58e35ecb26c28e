"""The benchmark client's two dialects: StudyBuddy's frames and centrifuge 0.15's JSON protocol."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import cast

from loadtests.lean_client import (
    CENTRIFUGE,
    STUDYBUDDY,
    Incoming,
    LeanSocket,
    Tally,
    record_messages,
)

PUSH = (
    b'{"result":{"channel":"bench-1","data":{"data":{"created_at":"2026-12-06T02:24:48.711Z",'
    b'"type":"message","client_msg_id":"s1-4","sender":1,"n":4,"body":"hi"}}}}\n'
)


def test_studybuddy_frames_are_one_per_message() -> None:
    frame = (
        b'{"type":"message","seq":7,"created_at":"2026-12-06T02:24:48.711Z","client_msg_id":"s0-1"}'
    )
    (incoming,) = STUDYBUDDY.decode(frame)
    assert (incoming.type, incoming.seq, incoming.sender) == ("message", 7, -1)
    assert STUDYBUDDY.key(incoming) == "message"
    payload, key = STUDYBUDDY.hello("u", "token-1")
    assert json.loads(payload) == {"type": "auth", "token": "token-1"}
    assert key == "ready"
    sent = json.loads(STUDYBUDDY.send("g", "body", 2, 9))
    assert sent == {"type": "send", "group_id": "g", "body": "body", "client_msg_id": "s2-9"}


def test_studybuddy_order_is_gapless_seq() -> None:
    assert STUDYBUDDY.ordered(Tally(seqs=[1, 2, 3]))
    assert not STUDYBUDDY.ordered(Tally(seqs=[1, 3]))


def test_centrifuge_publication_push_becomes_a_message() -> None:
    (incoming,) = CENTRIFUGE.decode(PUSH)
    assert incoming == Incoming("message", 0, "2026-12-06T02:24:48.711Z", "s1-4", 1, 4)
    assert CENTRIFUGE.key(incoming) == "message"


def test_centrifuge_message_with_several_lines() -> None:
    frames = CENTRIFUGE.decode(PUSH + b'{"id":5,"result":{}}\n' + PUSH)
    assert [(f.type, f.seq) for f in frames] == [("message", 0), ("reply", 5), ("message", 0)]
    assert CENTRIFUGE.key(frames[1]) == 5


def test_centrifuge_errors_other_pushes_and_history_offsets() -> None:
    (error,) = CENTRIFUGE.decode(b'{"id":8,"error":{"code":107,"message":"bad request"}}')
    assert (error.type, CENTRIFUGE.key(error)) == ("error", 8)
    (join,) = CENTRIFUGE.decode(b'{"result":{"type":1,"channel":"c","data":{"info":{}}}}')
    assert join.type == "push"
    (numbered,) = CENTRIFUGE.decode(
        PUSH.replace(b'"data":{"created', b'"offset":12,"data":{"created')
    )
    assert numbered.seq == 12


def test_centrifuge_commands() -> None:
    payload, key = CENTRIFUGE.hello("u3", "")
    command = json.loads(payload)
    assert command == {"id": key, "method": 0, "params": {"data": {"user": "u3"}}}
    payload, key = CENTRIFUGE.subscribe("bench-1")
    assert json.loads(payload) == {"id": key, "method": 1, "params": {"channel": "bench-1"}}
    command = json.loads(CENTRIFUGE.send("bench-1", "hi", 1, 4))
    assert command["method"] == 3
    assert command["params"]["data"] == {
        "type": "message",
        "client_msg_id": "s1-4",
        "sender": 1,
        "n": 4,
        "body": "hi",
    }


def test_centrifuge_order_is_per_sender() -> None:
    sock = cast(LeanSocket, SimpleNamespace(tally=Tally(), arrived=1.0))
    stamp = "2026-12-06T02:24:48.711Z"
    for sender, n in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        record_messages(sock, Incoming("message", 0, stamp, f"s{sender}-{n}", sender, n))
    assert CENTRIFUGE.ordered(sock.tally)
    record_messages(sock, Incoming("message", 0, stamp, "s0-3", 0, 3))  # s0-2 skipped
    assert not CENTRIFUGE.ordered(sock.tally)
    assert len(sock.tally.seqs) == len(sock.tally.latencies) == 5
