"""Sending email: one interface, two real backends.

- :class:`SmtpMailer` speaks SMTP with aiosmtplib: ``smtp://`` (plain), ``smtp+starttls://``
  (upgrade after connecting) and ``smtps://`` (TLS from the first byte), with a login when
  the URL carries one and a timeout on every step (``?timeout=<s>``, default 10 s).
- :class:`FileMailer` writes each message as an ``.eml`` file under ``MAIL_DIR``: the embedded
  default, which any mail program opens.

Both take a finished :class:`email.message.EmailMessage`; composing it is the services' job.
A failure raises :class:`MailError`, which the job's retries and dead letters deal with.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

DEFAULT_TIMEOUT_S = 10.0
PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(Exception):
    """The message could not be handed over; trying again later may work."""


class Mailer(Protocol):
    """Hands finished messages to a mail system."""

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` to its ``To`` recipients.

        Raises:
            MailError: not sent.
        """
        ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to reach the SMTP server, parsed from ``SMTP_URL``."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool
    timeout_s: float

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Read ``smtp[+starttls|s]://[user[:password]@]host[:port][?timeout=seconds]``.

        Raises:
            ValueError: an unknown scheme or no host.
        """
        parts = urlsplit(url)
        if parts.scheme not in PORTS or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://, smtp+starttls:// or smtps://host[:port]")
        timeout = parse_qs(parts.query).get("timeout", [str(DEFAULT_TIMEOUT_S)])[0]
        return cls(
            host=parts.hostname,
            port=parts.port or PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            start_tls=parts.scheme == "smtp+starttls",
            timeout_s=float(timeout),
        )


def flatten(message: EmailMessage) -> bytes:
    """The message's bytes as sent, folded by its own policy, CRLF line ends.

    aiosmtplib would refold them with ``email.policy.SMTP``, which starts a long subject on
    a line of its own (read back with a leading space).
    """
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class SmtpMailer:
    """Sends through an SMTP server, one connection per message."""

    def __init__(self, target: SmtpTarget) -> None:
        self._target = target

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` over SMTP.

        Raises:
            MailError: connection, TLS, login or the server's refusal.
        """
        target = self._target
        try:
            await aiosmtplib.send(
                flatten(message),
                sender=parseaddr(message["From"])[1],
                recipients=[address for _, address in getaddresses(message.get_all("To", []))],
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                start_tls=target.start_tls,
                timeout=target.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP {target.host}:{target.port}: {exc}") from exc


class FileMailer:
    """Writes each message to ``<folder>/<UTC time to the ns>-<id>.eml``, atomically.

    Names sort in the order the messages were written, so a person (or a test) reading the
    folder sees the latest last.
    """

    def __init__(self, folder: str | Path) -> None:
        self._folder = Path(folder)

    async def send(self, message: EmailMessage) -> None:
        """Store ``message`` as an ``.eml`` file.

        Raises:
            MailError: the folder cannot be written.
        """
        try:
            await asyncio.to_thread(self._write, flatten(message))
        except OSError as exc:
            raise MailError(f"cannot write to {self._folder}: {exc}") from exc

    def _write(self, data: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
        name = f"{stamp}.{nanos:09d}-{uuid.uuid4().hex[:12]}.eml"
        temporary = self._folder / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, self._folder / name)


def build_mailer(smtp_url: str | None, mail_dir: str) -> Mailer:
    """SMTP when ``SMTP_URL`` is set, ``.eml`` files under ``MAIL_DIR`` otherwise."""
    if smtp_url:
        return SmtpMailer(SmtpTarget.parse(smtp_url))
    return FileMailer(mail_dir)
