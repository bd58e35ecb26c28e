"""One connection's decisions, driven with plain calls and a number for the time."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from protocol.codec import InvalidFrame
from protocol.errors import CloseCode, ErrorCode
from protocol.frames import (
    Auth,
    ClientFrames,
    Error,
    Ping,
    Pong,
    Read,
    Ready,
    Refresh,
    Send,
    Subscribe,
    Typing,
    Unsubscribe,
)
from server.ws.session import (
    Authenticate,
    Close,
    DoRead,
    DoSend,
    DoSubscribe,
    DoTyping,
    DoUnsubscribe,
    Effect,
    FrameBudget,
    Phase,
    Reply,
    Session,
)

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_USER = uuid.UUID("00000000-0000-4000-8000-000000000002")
GROUP = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
NOW = 1_000.0


def ready_session(
    *,
    budget: FrameBudget | None = None,
    max_strikes: int = 10,
    strike_window_s: float = 10.0,
) -> Session:
    """A session that has already authenticated as USER."""
    session = Session(
        session_id="s-1",
        heartbeat_s=25.0,
        budget=budget or FrameBudget(50.0, 100),
        max_strikes=max_strikes,
        strike_window_s=strike_window_s,
    )
    session.authenticated(USER, expires_at=NOW + 900, ref=None)
    return session


def error_of(effects: list[Effect]) -> Error:
    """The single error frame among ``effects``."""
    assert len(effects) == 1
    reply = effects[0]
    assert isinstance(reply, Reply)
    assert isinstance(reply.frame, Error)
    return reply.frame


# --- the first frame ------------------------------------------------------------------


def test_auth_as_first_frame_asks_for_token_verification() -> None:
    """A connection opening with ``auth`` gets its token verified, ref carried along."""
    session = Session(session_id="s-1", heartbeat_s=25.0)
    effect = session.first(Auth(token="jwt", ref=7))
    assert effect == Authenticate("jwt", 7, first=True)
    assert session.phase is Phase.AUTHENTICATING


@pytest.mark.parametrize(
    "frame",
    [
        Ping(),
        Subscribe(group_id=GROUP),
        Refresh(token="jwt"),
        Send(group_id=GROUP, body="hi", client_msg_id="c1"),
    ],
    ids=lambda frame: type(frame).__name__,
)
def test_any_other_first_frame_closes_unauthorized(frame: ClientFrames) -> None:
    """Opening with anything but ``auth`` closes the socket with 4001."""
    session = Session(session_id="s-1", heartbeat_s=25.0)
    effect = session.first(frame)
    assert isinstance(effect, Close)
    assert effect.code == 4001
    assert session.phase is Phase.CLOSED


# --- authentication results --------------------------------------------------------------


def test_authenticated_replies_ready_echoing_ref() -> None:
    """A verified token makes the socket ready: ``ready`` names user and session, with ref."""
    session = Session(session_id="s-1", heartbeat_s=25.0)
    effects = session.authenticated(USER, expires_at=NOW + 900, ref="r-1")
    assert effects == [Reply(Ready(user_id=USER, session_id="s-1", heartbeat_s=25.0, ref="r-1"))]
    assert session.phase is Phase.READY
    assert session.user_id == USER
    assert session.expires_at == NOW + 900


def test_authenticated_without_ref_leaves_ref_unset() -> None:
    """No ref on the request, no ref on ``ready``."""
    session = Session(session_id="s-1", heartbeat_s=25.0)
    effects = session.authenticated(USER, expires_at=NOW + 900, ref=None)
    assert effects == [Reply(Ready(user_id=USER, session_id="s-1", heartbeat_s=25.0))]


def test_refresh_for_the_same_user_extends_expiry_and_replies_ready() -> None:
    """An in-band refresh of the same user answers ``ready`` again and moves the expiry."""
    session = ready_session()
    effects = session.authenticated(USER, expires_at=NOW + 1800, ref=3)
    assert effects == [Reply(Ready(user_id=USER, session_id="s-1", heartbeat_s=25.0, ref=3))]
    assert session.expires_at == NOW + 1800
    assert session.phase is Phase.READY


def test_refresh_for_another_user_closes_unauthorized() -> None:
    """A refresh token of a different user is refused with 4001; identity cannot change."""
    session = ready_session()
    effects = session.authenticated(OTHER_USER, expires_at=NOW + 1800, ref=None)
    assert len(effects) == 1
    assert isinstance(effects[0], Close)
    assert effects[0].code == CloseCode.UNAUTHORIZED
    assert session.phase is Phase.CLOSED
    assert session.user_id == USER


# --- dispatch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (Ping(ref=1), [Reply(Pong(ref=1))]),
        (Ping(), [Reply(Pong())]),
        (
            Subscribe(group_id=GROUP, since_seq=41, ref="a"),
            [DoSubscribe(GROUP, 41, "a")],
        ),
        (Subscribe(group_id=GROUP), [DoSubscribe(GROUP, None, None)]),
        (
            Send(group_id=GROUP, body="hello", client_msg_id="c-1", ref=9),
            [DoSend(GROUP, "hello", "c-1", 9)],
        ),
        (Typing(group_id=GROUP, ref=2), [DoTyping(GROUP, 2)]),
        (Read(group_id=GROUP, seq=12, ref=3), [DoRead(GROUP, 12, 3)]),
        (Refresh(token="new-jwt", ref="x"), [Authenticate("new-jwt", "x", first=False)]),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, list) else "",
)
def test_each_frame_type_maps_to_its_effect(frame: ClientFrames, expected: list[Effect]) -> None:
    """Every client frame of a ready socket becomes exactly the effect the endpoint carries."""
    session = ready_session()
    assert session.handle(frame, NOW) == expected


def test_unsubscribe_is_left_to_the_hub() -> None:
    """Whether the socket was subscribed is the hub's to say; the session asks it to end it."""
    session = ready_session()
    assert session.handle(Unsubscribe(group_id=GROUP, ref=4), NOW) == [DoUnsubscribe(GROUP, 4)]


def test_second_auth_is_a_validation_error() -> None:
    """``auth`` on a ready socket is refused with ``VALIDATION_ERROR``; refresh is the way."""
    session = ready_session()
    error = error_of(session.handle(Auth(token="jwt", ref=5), NOW))
    assert error.code == ErrorCode.VALIDATION_ERROR
    assert error.ref == 5
    assert session.phase is Phase.READY


# --- frame budget --------------------------------------------------------------------------


def test_frame_budget_bursts_then_refuses() -> None:
    """A full budget allows ``burst`` frames at one instant and refuses the next."""
    budget = FrameBudget(rate=2.0, burst=4)
    assert [budget.take(NOW) for _ in range(5)] == [True, True, True, True, False]


def test_frame_budget_recovers_one_frame_per_interval() -> None:
    """After a burst, one frame comes back every ``1 / rate`` seconds, not more."""
    budget = FrameBudget(rate=2.0, burst=4)
    for _ in range(4):
        assert budget.take(NOW)
    assert not budget.take(NOW + 0.25)
    assert budget.take(NOW + 0.5)
    assert not budget.take(NOW + 0.5)
    assert budget.take(NOW + 1.0)


def test_frame_budget_refills_to_burst_after_idle() -> None:
    """A long pause refills the budget to a full burst, never more."""
    budget = FrameBudget(rate=2.0, burst=4)
    for _ in range(4):
        budget.take(NOW)
    later = NOW + 60.0
    assert [budget.take(later) for _ in range(5)] == [True, True, True, True, False]


def test_frames_over_budget_are_rate_limited_with_ref() -> None:
    """A ready socket sending faster than its budget gets ``RATE_LIMITED`` for the excess."""
    session = ready_session(budget=FrameBudget(rate=2.0, burst=2))
    assert session.handle(Ping(), NOW) == [Reply(Pong())]
    assert session.handle(Ping(), NOW) == [Reply(Pong())]
    error = error_of(session.handle(Ping(ref="p3"), NOW))
    assert error.code == ErrorCode.RATE_LIMITED
    assert error.ref == "p3"
    assert session.handle(Ping(), NOW + 0.5) == [Reply(Pong())]


# --- strikes -------------------------------------------------------------------------------


def test_rate_limited_is_an_error_with_ref() -> None:
    """Being over a rate answers ``RATE_LIMITED`` and echoes the frame's ref."""
    session = ready_session()
    error = error_of(session.rate_limited("m-1", NOW))
    assert error.code == ErrorCode.RATE_LIMITED
    assert error.ref == "m-1"


def test_more_than_max_strikes_in_window_closes_for_flooding() -> None:
    """``max_strikes`` refusals are errors; one more within the window closes with 4008."""
    session = ready_session(max_strikes=3, strike_window_s=5.0)
    for i in range(3):
        error_of(session.rate_limited(None, NOW + i))
    effects = session.rate_limited(None, NOW + 3)
    assert effects == [Close(4008, "flooding")]
    assert session.phase is Phase.CLOSED


def test_strikes_outside_the_window_are_forgotten() -> None:
    """Strikes older than the window no longer count toward flooding."""
    session = ready_session(max_strikes=3, strike_window_s=5.0)
    for i in range(3):
        error_of(session.rate_limited(None, NOW + i))
    # at NOW + 5.5 the strike at NOW has aged out, at NOW + 6.5 the one at NOW + 1 too
    for t in (NOW + 5.5, NOW + 6.5):
        assert error_of(session.rate_limited(None, t)).code == ErrorCode.RATE_LIMITED
    assert session.phase is Phase.READY


def test_default_strike_policy_tolerates_ten_strikes() -> None:
    """With the defaults, ten strikes in ten seconds are errors; the eleventh closes."""
    session = ready_session()
    for i in range(10):
        error_of(session.rate_limited(None, NOW + i * 0.5))
    assert session.rate_limited(None, NOW + 5.0) == [Close(CloseCode.FLOODING, "flooding")]


# --- invalid frames ------------------------------------------------------------------------


def test_invalid_frame_is_validation_error_echoing_ref() -> None:
    """A well-formed frame with bad content: ``VALIDATION_ERROR`` with the decoder's message."""
    session = ready_session()
    problem = InvalidFrame("Expected `str`, got `int` - at `$.body`", ref="bad-1")
    error = error_of(session.invalid(problem, NOW))
    assert error.code == ErrorCode.VALIDATION_ERROR
    assert error.message == problem.message
    assert error.ref == "bad-1"


def test_invalid_frame_without_ref_has_no_ref() -> None:
    """No ref could be read from the bad frame, so the error carries none."""
    session = ready_session()
    error = error_of(session.invalid(InvalidFrame("unknown type", ref=None), NOW))
    assert error.code == ErrorCode.VALIDATION_ERROR
    assert error.ref is msgspec.UNSET


def test_invalid_frames_within_the_frame_rate_keep_the_socket_open() -> None:
    """``VALIDATION_ERROR`` keeps the socket open (contract section 4), however many come."""
    session = ready_session(max_strikes=2, strike_window_s=10.0)
    for i in range(50):
        assert error_of(session.invalid(InvalidFrame("bad", ref=i), NOW + i * 0.1)).ref == i
    assert session.phase is Phase.READY


def test_a_flood_of_invalid_frames_is_rate_limited_then_closed() -> None:
    """Invalid frames spend the frame budget: past it, RATE_LIMITED, then 4008."""
    session = ready_session(budget=FrameBudget(1.0, 2), max_strikes=2)
    codes = [error_of(session.invalid(InvalidFrame("bad", ref=i), NOW)).code for i in range(4)]
    assert codes == [ErrorCode.VALIDATION_ERROR] * 2 + [ErrorCode.RATE_LIMITED] * 2
    assert session.invalid(InvalidFrame("bad", ref=9), NOW) == [
        Close(CloseCode.FLOODING, "flooding")
    ]
