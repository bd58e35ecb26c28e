"""Socket users: ``Chatter`` talks in its groups, ``Listener`` keeps an idle socket open.

Both log in over REST, open a real socket (``wsclient.py``), authenticate, subscribe to the
seeded person's groups and account for every ``message`` frame (``loadtests/accounting.py``):
lost, duplicated and out-of-order deliveries are failures in Locust's statistics. Now and
then they drop the socket and come back with ``since_seq``, as a phone on a train does.

What goes into Locust's statistics (request type ``WS``):

- ``connect``: TCP, upgrade, ``auth`` until ``ready``; ``subscribe`` / ``resubscribe``: until
  ``subscribed`` (the latter includes the replay).
- ``ack``: ``send`` until its ``ack``. ``delivery``: publish-to-delivery, from the send time
  the sender wrote into the body to the arrival of the frame at each subscriber (same host,
  same clock). ``replayed``: the same for messages replayed after a reconnect (the time
  away included; no threshold).
- failures: ``lost`` (reported when the user stops, since a message counted lost may still
  turn up late), ``duplicate``, ``out of order``, ``unexpected``, ``unrecovered``,
  ``ack`` (no ack within 10 s), ``error <CODE>``, ``closed`` (closed by the server), and
  a failed ``subscribe`` / ``resubscribe`` (the group is retried before the next task, and
  its own acked messages are not owed to this socket meanwhile).
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import gevent
from locust import between, task

from loadtests.accounting import Outcome, SequenceTracker, Tally
from loadtests.scenarios.base import FAKE, SeededUser, arriving
from loadtests.scenarios.wsclient import GeventWebSocket, SocketClosedError, socket_url
from protocol.codec import CLIENT_CODECS, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, ClientCodec
from protocol.frames import (
    Ack,
    Auth,
    Error,
    MessageCreated,
    Read,
    Send,
    ServerFrames,
    Subscribe,
    Subscribed,
    Typing,
)

WS = "WS"
STAMP = " #t="
"""The sender's clock travels at the end of the body: ``<text> #t=<unix seconds>``."""
ACK_TIMEOUT_S = 10.0
GRACE_S = 5.0
"""How long a skipped or acked message may take before it counts as lost."""
FAULTS = {
    Outcome.DUPLICATE: "duplicate",
    Outcome.OUT_OF_ORDER: "out of order",
    Outcome.UNEXPECTED: "unexpected",
}

RUN = Tally()
"""Every finished socket's tally, for the verdict."""
LIVE: set[SequenceTracker] = set()
"""Trackers of users still running."""


def run_tally() -> Tally:
    """The run's delivery tally so far: finished users plus live ones."""
    total = Tally()
    total.add(RUN)
    for tracker in LIVE:
        total.add(tracker.tally)
    return total


def stamped(text: str) -> str:
    """A message body carrying the send time."""
    return f"{text}{STAMP}{time.time():.6f}"


def sent_at(body: str) -> float | None:
    """The send time a body carries, or None (a message from a REST user)."""
    _, found, stamp = body.rpartition(STAMP)
    try:
        return float(stamp) if found else None
    except ValueError:
        return None


def codec_for(option: str, index: int) -> ClientCodec:
    """``json``, ``msgpack``, or ``both`` (alternating by person)."""
    if option == "both":
        option = "msgpack" if index % 2 else "json"
    return CLIENT_CODECS[MSGPACK_SUBPROTOCOL if option == "msgpack" else JSON_SUBPROTOCOL]


class Chatter(SeededUser):
    """A student in a live study session: types, sends, reads, sometimes reconnects."""

    weight = 1
    wait_time = between(4, 12)

    def on_start(self) -> None:
        """Log in, connect, subscribe."""
        self.tracker = SequenceTracker(GRACE_S)
        LIVE.add(self.tracker)
        self.pending: dict[str, tuple[float, str]] = {}
        self.replaying: set[str] = set()
        self.detached: set[str] = set()
        """Groups whose (re-)subscription failed: retried before the next task."""
        self.codec = codec_for(self.environment.parsed_options.codec, self.person.index)
        self.sock: GeventWebSocket | None = None
        self.refs = 0
        with arriving():
            self.log_in()
            self.open(resume=False)

    # -- connection -----------------------------------------------------------------------

    def open(self, *, resume: bool) -> None:
        """Connect, authenticate and subscribe every group (``since_seq`` when resuming)."""
        started = time.perf_counter()
        self.sock = None  # a failed attempt leaves no socket to mistake for a server close
        try:
            self.sock = GeventWebSocket.connect(
                socket_url(self.host or ""), self.codec, self.on_frame, self.source
            )
            ready = self.sock.request(Auth(token=self.access_token, ref=self.ref()))
        except (OSError, TimeoutError, ValueError) as exc:
            self.fire("connect", started, exc=exc)
            return
        if isinstance(ready, Error):
            self.fire("connect", started, exc=RuntimeError(f"{ready.code}: {ready.message}"))
            return
        self.fire("connect", started)
        for group in self.person.groups:
            self.subscribe(str(group), resume)

    def subscribe(self, group: str, resume: bool) -> None:
        """Subscribe one group and wait for ``subscribed``."""
        if self.sock is None:
            return
        since = self.tracker.since(group) if resume else None
        name = "resubscribe" if since is not None else "subscribe"
        if since is not None:
            self.replaying.add(group)
        started = time.perf_counter()
        frame = Subscribe(group_id=uuid.UUID(group), since_seq=since, ref=self.ref())
        try:
            answer = self.sock.request(frame)
        except (OSError, TimeoutError) as exc:
            answer = Error(code="NO_ANSWER", message=str(exc))
        if isinstance(answer, Error):
            self.replaying.discard(group)
            self.tracker.detach(group)
            self.detached.add(group)
            self.fire(name, started, exc=RuntimeError(answer.code))
            return
        self.detached.discard(group)
        self.fire(name, started)

    def ref(self) -> str:
        """A fresh ``ref`` for a request."""
        self.refs += 1
        return f"r{self.refs}"

    # -- incoming frames (the reader greenlet) ------------------------------------------

    def on_frame(self, frame: ServerFrames, arrived: float, size: int) -> None:
        """Account for one frame from the server."""
        match frame:
            case MessageCreated():
                self.delivered(frame, arrived, size)
            case Ack():
                self.acked(frame)
            case Subscribed():
                group = str(frame.group_id)
                self.replaying.discard(group)
                before = self.tracker.tally.unrecovered
                self.tracker.subscribed(group, frame.last_seq, frame.recovered)
                if self.tracker.tally.unrecovered > before:
                    self.fire("unrecovered", exc=RuntimeError("beyond the recovery window"))
            case Error():
                self.fire(f"error {frame.code}", exc=RuntimeError(frame.message))
            case _:
                pass

    def delivered(self, frame: MessageCreated, arrived: float, size: int) -> None:
        """Record a message's order and, when it carries one, its publish-to-delivery time."""
        group = str(frame.group_id)
        outcome = self.tracker.observe(group, frame.seq, arrived)
        fault = FAULTS.get(outcome)
        if fault is not None:
            self.fire(fault, exc=RuntimeError(f"seq {frame.seq} in {group}"))
            if outcome is not Outcome.OUT_OF_ORDER:
                return
        sent = sent_at(frame.body)
        if sent is not None:
            name = "replayed" if group in self.replaying else "delivery"
            self.fire(name, ms=max(0.0, (arrived - sent) * 1000), length=size)

    def acked(self, frame: Ack) -> None:
        """Time an ack; its seq must now reach this socket."""
        pending = self.pending.pop(frame.client_msg_id, None)
        if pending is None:
            return
        started, group = pending
        self.fire("ack", started)
        self.tracker.promise(group, frame.seq, time.time())

    # -- tasks ----------------------------------------------------------------------------

    @task(10)
    def talk(self) -> None:
        """Type for a moment, then send a message to one of the groups."""
        sock = self.ready()
        if sock is None:
            return
        group = random.choice(self.person.groups)
        try:
            sock.send(Typing(group_id=group))
            gevent.sleep(random.uniform(1.0, 3.0))
            client_msg_id = uuid.uuid4().hex
            self.pending[client_msg_id] = (time.perf_counter(), str(group))
            body = stamped(FAKE.sentence(nb_words=random.randint(4, 18)))
            sock.send(Send(group_id=group, body=body, client_msg_id=client_msg_id))
        except SocketClosedError:
            return

    @task(3)
    def mark_read(self) -> None:
        """Move the read marker to the last message seen in a group."""
        sock = self.ready()
        if sock is None:
            return
        group = random.choice(self.person.groups)
        seq = self.tracker.since(str(group))
        if seq:
            try:
                sock.send(Read(group_id=group, seq=seq))
            except SocketClosedError:
                return

    @task(1)
    def reconnect(self) -> None:
        """Drop the socket and come back a moment later with ``since_seq``."""
        sock = self.ready()
        if sock is None:
            return
        self.settle(2.0)
        sock.close()
        gevent.sleep(random.uniform(0.2, 2.0))
        self.open(resume=True)

    def ready(self) -> GeventWebSocket | None:
        """Sweep what is overdue; reopen a socket the server closed (None: skip this task)."""
        self.tracker.expire(time.time())
        for client_msg_id, (started, _group) in list(self.pending.items()):
            if time.perf_counter() - started > ACK_TIMEOUT_S:
                del self.pending[client_msg_id]
                self.fire("ack", started, exc=TimeoutError("no ack within 10 s"))
        if self.sock is None or self.sock.closed:
            if self.sock is not None:
                self.fire("closed", exc=SocketClosedError(self.sock.close_code))
            self.open(resume=True)
            return None
        for group in list(self.detached):
            self.subscribe(group, resume=True)
        return self.sock

    def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for outstanding acks and deliveries."""
        deadline = time.monotonic() + timeout
        while (self.pending or self.tracker.outstanding()) and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def on_stop(self) -> None:
        """Wait for what is in flight, count what never came, close."""
        self.settle(GRACE_S)
        self.tracker.expire(time.time(), grace_s=0)
        self.fire_many("lost", self.tracker.tally.lost)  # once, at the end: late ones came back
        for started, _group in self.pending.values():
            self.fire("ack", started, exc=TimeoutError("no ack before the end of the run"))
        self.pending.clear()
        if self.sock is not None:
            self.sock.close()
        LIVE.discard(self.tracker)
        RUN.add(self.tracker.tally)

    # -- statistics -----------------------------------------------------------------------

    def fire(
        self,
        name: str,
        started: float | None = None,
        *,
        ms: float | None = None,
        length: int = 0,
        exc: BaseException | None = None,
    ) -> None:
        """Report one socket event to Locust's statistics."""
        if ms is None:
            ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        self.environment.events.request.fire(
            request_type=WS,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    def fire_many(self, name: str, count: int) -> None:
        """Report ``count`` failures of one kind."""
        for _ in range(count):
            self.fire(name, exc=RuntimeError(name))


class Listener(Chatter):
    """An idle socket: subscribed all evening, reading now and then, never writing."""

    weight = 6
    wait_time = between(15, 45)
    tasks: Any = {Chatter.mark_read: 3, Chatter.reconnect: 1}  # noqa: RUF012 - Locust reads it
