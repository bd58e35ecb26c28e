"""Composing emails: both parts from one template each, escaping, and safe headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from server.outbound.mail import flatten
from server.services.clock import Clock
from server.services.mail import Composer, Letter, one_line, plain, render


class FixedClock(Clock):
    """A clock stopped at one moment."""

    def now(self) -> datetime:
        """Always the same moment."""
        return datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def _letter(**overrides: object) -> Letter:
    values = {
        "kind": "mention",
        "to_address": "ada@example.com",
        "to_name": "Ada",
        "subject": "Hello",
        "template": "notification",
        "values": {
            "name": "Ada",
            "headline": "You were mentioned",
            "detail": "<script>alert(1)</script> & more",
            "link": "https://app.example.com/groups/1?a=1&b=2",
            "kind": "mention",
            "settings": "https://app.example.com/settings/notifications",
        },
        "message_key": "notification.42",
    }
    values.update(overrides)
    return Letter(**values)  # type: ignore[arg-type]


def test_the_html_part_escapes_values_and_the_text_part_keeps_them() -> None:
    """Autoescaping in HTML only; the same values in both parts."""
    text, markup = render("notification", _letter().values)
    assert "<script>alert(1)</script> & more" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in markup
    assert "<script>" not in markup
    assert 'href="https://app.example.com/groups/1?a=1&amp;b=2"' in markup


def test_a_missing_value_is_an_error() -> None:
    """Every placeholder must be filled."""
    with pytest.raises(KeyError):
        render("verify_email", {"name": "Ada"})


def test_stored_text_is_unescaped_once() -> None:
    """What was escaped at rest reads as typed."""
    assert plain("&lt;b&gt; &amp; &#x27;") == "<b> & '"


def test_header_values_are_one_line_and_bounded() -> None:
    """CR, LF and tabs collapse into spaces; long values are cut with an ellipsis."""
    assert one_line("a\r\nBcc: x@y\n\tz") == "a Bcc: x@y z"
    assert one_line("x" * 200, 10) == "x" * 9 + "…"


def test_the_message_is_multipart_with_its_headers() -> None:
    """From, To, Subject, Date, Message-ID, List-Unsubscribe; plain and HTML alternatives."""
    composer = Composer(
        "StudyBuddy <no-reply@mail.example.com>", "https://app.example.com/", FixedClock()
    )
    message = composer.compose(
        _letter(to_name="Eve\r\nBcc: victim@example.com", subject="Hi\nX-A: b")
    )
    assert message["Message-ID"] == "<notification.42@mail.example.com>"
    assert message["List-Unsubscribe"] == "<https://app.example.com/settings/notifications>"
    assert message["Subject"] == "Hi X-A: b"
    assert message["Bcc"] is None and message["X-A"] is None
    assert message["To"] == '"Eve Bcc: victim@example.com" <ada@example.com>'
    assert message["Date"] == "Sun, 06 Dec 2026 09:30:00 +0000"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert composer.link("/x") == "https://app.example.com/x"


def test_a_long_subject_stays_on_the_subject_line() -> None:
    """No fold before the value (readers would show a leading space); it reads back as sent."""
    subject = "New assignment in Organized modular leverage 4dd960cf: Essay <draft> & notes"
    composer = Composer("no-reply@example.com", "https://app.example.com/", FixedClock())
    raw = flatten(composer.compose(_letter(subject=subject)))  # the bytes both mailers send
    assert f"Subject: {subject}\r\n".encode() in raw
    assert str(message_from_bytes(raw, policy=policy.default)["Subject"]) == subject


def test_a_sender_without_a_domain_falls_back_to_localhost() -> None:
    """The Message-ID always has a right-hand side."""
    composer = Composer("no-reply", "http://127.0.0.1:8000", FixedClock())
    assert composer.compose(_letter())["Message-ID"] == "<notification.42@localhost>"
