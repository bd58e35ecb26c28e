"""The two mail transports against real receivers: an SMTP server (aiosmtpd) and a folder.

SMTP in its three forms (plain, STARTTLS, implicit TLS), with a login, a wrong login, a
server that is down and one that never answers (the timeout); ``.eml`` files that parse back
into the same message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from server.outbound.mail import FileMailer, MailError, SmtpMailer, SmtpTarget, build_mailer
from tests.fixtures.processes import free_port
from tests.fixtures.smtp_server import SelfSigned, SmtpSink, make_certificate

LOGIN = ("relay@example.com", "s3cret pass/word")


def _message(to: str = "ada@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "StudyBuddy <no-reply@example.com>"
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content("plain body")
    message.add_alternative("<p>html body</p>", subtype="html")
    return message


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SelfSigned:
    """A self-signed certificate the client trusts (through SSL_CERT_FILE)."""
    made = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.cert_file))
    return made


@pytest.fixture
async def sinks(certificate: SelfSigned) -> AsyncIterator[dict[str, SmtpSink]]:
    """Plain, STARTTLS and implicit-TLS servers, each wanting a login."""
    context = certificate.server_context()
    started = {
        "plain": SmtpSink(credentials=LOGIN).start(),
        "starttls": SmtpSink(tls=context, credentials=LOGIN).start(),
        "smtps": SmtpSink(tls=context, implicit_tls=True, credentials=LOGIN).start(),
    }
    try:
        yield started
    finally:
        for sink in started.values():
            sink.stop()


def _url(sink: SmtpSink) -> str:
    # the login's "@" and "/" are percent-encoded, as an operator writes them in SMTP_URL
    return sink.url.replace(f"{LOGIN[0]}:{LOGIN[1]}@", "relay%40example.com:s3cret%20pass%2Fword@")


@pytest.mark.parametrize("kind", ["plain", "starttls", "smtps"])
async def test_smtp_delivers_with_a_login_in_each_mode(
    sinks: dict[str, SmtpSink], kind: str
) -> None:
    """The message arrives, multipart, with the login the URL carried (decoded)."""
    sink = sinks[kind]
    await build_mailer(_url(sink), "unused").send(_message())
    (received,) = await sink.wait_for("ada@example.com")
    assert received.login == LOGIN[0]
    assert received.text.strip() == "plain body"
    assert received.html.strip() == "<p>html body</p>"


async def test_a_wrong_login_is_a_mail_error(sinks: dict[str, SmtpSink]) -> None:
    """Authentication refused: MailError naming the server, nothing accepted."""
    sink = sinks["starttls"]
    url = sink.url.replace(LOGIN[1], "wrong")
    with pytest.raises(MailError, match=f"127.0.0.1:{sink.port}"):
        await build_mailer(url, "unused").send(_message())
    assert sink.received == []


async def test_a_server_that_is_down_is_a_mail_error() -> None:
    """Nobody listens: MailError, at once."""
    mailer = SmtpMailer(SmtpTarget.parse(f"smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(MailError):
        await mailer.send(_message())


async def test_a_server_that_never_answers_times_out() -> None:
    """A peer that accepts the connection and stays silent: MailError after the timeout."""

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(MailError):
            await build_mailer(f"smtp://127.0.0.1:{port}?timeout=0.5", "unused").send(_message())
    finally:
        server.close()
    assert time.monotonic() - started < 5


def test_smtp_urls_parse_with_their_default_ports() -> None:
    """Ports default per scheme; an unknown scheme or a missing host is refused."""
    assert SmtpTarget.parse("smtp://relay").port == 25
    starttls = SmtpTarget.parse("smtp+starttls://u:p@relay")
    assert (starttls.port, starttls.start_tls, starttls.use_tls) == (587, True, False)
    smtps = SmtpTarget.parse("smtps://relay:2465?timeout=3")
    assert (smtps.port, smtps.use_tls, smtps.timeout_s) == (2465, True, 3.0)
    for bad in ("http://relay", "smtp://"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            SmtpTarget.parse(bad)


async def test_file_mailer_writes_eml_files_a_mail_program_opens(tmp_path: Path) -> None:
    """Without SMTP_URL each message is an .eml file that parses back into the message."""
    folder = tmp_path / "mail"
    mailer = build_mailer(None, str(folder))
    assert isinstance(mailer, FileMailer)
    await mailer.send(_message("grace@example.com"))
    (written,) = folder.glob("*.eml")
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["To"] == "grace@example.com"
    body = parsed.get_body(preferencelist=("html",))
    assert body is not None
    assert "html body" in body.get_content()  # type: ignore[attr-defined]
    assert not list(folder.glob(".*.tmp"))


def _recipients_in_name_order(folder: Path) -> list[str]:
    return [
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["To"])
        for path in sorted(folder.glob("*.eml"))
    ]


async def test_eml_files_sort_in_the_order_they_were_written(tmp_path: Path) -> None:
    """Messages written within one second still list oldest first (names carry the ns)."""
    mailer = FileMailer(tmp_path)
    recipients = [f"reader{index}@example.com" for index in range(5)]
    for to in recipients:
        await mailer.send(_message(to))
    assert _recipients_in_name_order(tmp_path) == recipients


async def test_an_unwritable_mail_dir_is_a_mail_error(tmp_path: Path) -> None:
    """MAIL_DIR that is a file: MailError (the job retries, then dead-letters)."""
    blocker = tmp_path / "mail"
    blocker.write_text("not a folder")
    with pytest.raises(MailError, match="cannot write"):
        await FileMailer(blocker).send(_message())
