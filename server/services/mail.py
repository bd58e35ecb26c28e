"""Composing emails: templates, escaping, and headers that cannot be injected into.

Each email has one plain-text and one HTML template in ``services/templates/`` (``string``
templates, ``${name}`` placeholders). Values are plain text: the HTML part escapes every
value (autoescaping), the text part uses them as they are. Text stored by the product is
HTML-escaped at rest (contract section 1), so callers pass it through :func:`plain` first:
escaping it again would show ``&amp;lt;`` to the reader.

Header values (subject, display names) are collapsed to one line, so a name or title holding
CR/LF cannot add a header (``Bcc: ...``); the message carries a ``Message-ID`` and a
``List-Unsubscribe`` that points to the notification settings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from functools import cache
from importlib.resources import files
from string import Template
from typing import Final, Protocol

from server.observability.metrics import EMAILS_SENT
from server.services.clock import Clock

SUBJECT_MAX: Final = 150
MAIL_POLICY: Final = SMTP.clone(max_line_length=998)
"""Headers folded only past RFC 5322's hard line limit: CPython folds a value that does not fit
beside its name by starting it on a line of its own, which readers show as a leading space
(a 77-character subject arrived as " New assignment in ...")."""
_LINE_BREAKS = re.compile(r"\s+")
SETTINGS_PATH: Final = "/settings/notifications"


def plain(stored: str) -> str:
    """Text as the person typed it, from its stored (HTML-escaped) form."""
    return html.unescape(stored)


def one_line(value: str, limit: int = SUBJECT_MAX) -> str:
    r"""A header-safe value: every run of whitespace (CR, LF, tab, ...) becomes one space."""
    text = _LINE_BREAKS.sub(" ", value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def _template(name: str) -> Template:
    source = files("server.services") / "templates" / name
    return Template(source.read_text(encoding="utf-8"))


def render(name: str, values: dict[str, str]) -> tuple[str, str]:
    """The plain-text and HTML bodies of template ``name`` (HTML values escaped).

    Raises:
        KeyError: a placeholder without a value.
    """
    text = _template(f"{name}.txt").substitute(values)
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    return text, _template(f"{name}.html").substitute(escaped)


@dataclass(frozen=True, slots=True)
class Letter:
    """One email to compose: who, what, and which template with which values."""

    kind: str
    to_address: str
    to_name: str
    subject: str
    template: str
    values: dict[str, str]
    message_key: str
    """Unique per email (a notification id, a token's row id): the ``Message-ID``'s left part."""


class Composer:
    """Builds :class:`~email.message.EmailMessage` objects from :class:`Letter` values."""

    def __init__(self, sender: str, public_web_url: str, clock: Clock) -> None:
        self._sender = sender
        address = parseaddr(sender)[1]
        self._domain = address.rpartition("@")[2] if "@" in address else "localhost"
        self._web = public_web_url.rstrip("/")
        self._clock = clock

    def link(self, path: str) -> str:
        """An absolute link into the web app (``PUBLIC_WEB_URL`` + ``path``)."""
        return f"{self._web}{path}"

    @property
    def settings_link(self) -> str:
        """Where a person changes which notifications are emailed."""
        return self.link(SETTINGS_PATH)

    def compose(self, letter: Letter) -> EmailMessage:
        """The multipart message (plain text and HTML alternatives) with its headers."""
        text, markup = render(letter.template, letter.values)
        message = EmailMessage(policy=MAIL_POLICY)
        message["From"] = self._sender
        message["To"] = formataddr((one_line(letter.to_name, 100), letter.to_address))
        message["Subject"] = one_line(letter.subject)
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = f"<{letter.message_key}@{self._domain}>"
        message["List-Unsubscribe"] = f"<{self.settings_link}>"
        message["X-StudyBuddy-Kind"] = letter.kind
        message.set_content(text)
        message.add_alternative(markup, subtype="html")
        return message


class Transport(Protocol):
    """Hands a finished message over (:class:`server.outbound.mail.Mailer`)."""

    async def send(self, message: EmailMessage) -> None:
        """Send it, or raise."""
        ...


class Postman:
    """Composes letters, sends them through the transport, and counts the outcome."""

    def __init__(self, composer: Composer, transport: Transport) -> None:
        self.composer = composer
        self._transport = transport

    async def deliver(self, letter: Letter) -> None:
        """Send one letter; ``studybuddy_emails_sent_total{kind,result}`` counts it.

        Raises:
            Exception: whatever the transport raised (the job retries).
        """
        message = self.composer.compose(letter)
        try:
            await self._transport.send(message)
        except Exception:
            EMAILS_SENT.labels(letter.kind, "error").inc()
            raise
        EMAILS_SENT.labels(letter.kind, "sent").inc()
