"""Upload scanning: built-in EICAR scanner, clamd replies, and a client of a fake clamd."""

from __future__ import annotations

import asyncio
import socket
import struct
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.security.scanner import (
    CHUNK,
    EICAR,
    BuiltinScanner,
    ClamdError,
    ClamdScanner,
    ScanResult,
    build_scanner,
    parse_clamd_reply,
)


@dataclass
class FakeClamd:
    """What a fake clamd saw, and what it answers."""

    commands: list[bytes] = field(default_factory=list)
    chunk_sizes: list[list[int]] = field(default_factory=list)
    streams: list[bytes] = field(default_factory=list)
    reply: bytes | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Speak clamd's INSTREAM: command, length-prefixed chunks, a zero-length end."""
        self.commands.append(await reader.readexactly(len(b"zINSTREAM\0")))
        sizes: list[int] = []
        data = b""
        while True:
            (size,) = struct.unpack(">I", await reader.readexactly(4))
            if size == 0:
                break
            sizes.append(size)
            data += await reader.readexactly(size)
        self.chunk_sizes.append(sizes)
        self.streams.append(data)
        if self.reply is not None:
            writer.write(self.reply)
        elif EICAR in data:
            writer.write(b"stream: Eicar-Signature FOUND\0")
        else:
            writer.write(b"stream: OK\0")
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def tcp_clamd() -> AsyncIterator[tuple[FakeClamd, str]]:
    """A fake clamd on 127.0.0.1 and an ephemeral port, with its tcp:// URL."""
    fake = FakeClamd()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake, f"tcp://127.0.0.1:{port}"


@pytest.fixture
async def unix_clamd() -> AsyncIterator[tuple[FakeClamd, str]]:
    """A fake clamd on a unix socket (short path: sun_path is ~100 bytes), with its URL."""
    fake = FakeClamd()
    with tempfile.TemporaryDirectory(prefix="clamd") as directory:
        path = Path(directory) / "clamd.ctl"
        server = await asyncio.start_unix_server(fake.handle, path=str(path))
        async with server:
            yield fake, f"unix://{path}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_builtin_scanner_finds_eicar_inside_data() -> None:
    """The EICAR string anywhere in the upload is reported as malware."""
    result = await BuiltinScanner().scan(b"prefix " + EICAR + b" suffix")
    assert result == ScanResult(False, "Eicar-Test-Signature")


async def test_builtin_scanner_passes_clean_data() -> None:
    """Ordinary bytes are clean, with no signature."""
    assert await BuiltinScanner().scan(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100) == ScanResult(True)


def test_parse_ok_reply() -> None:
    """'stream: OK' with clamd's NUL terminator is clean."""
    assert parse_clamd_reply(b"stream: OK\0") == ScanResult(True, None)


def test_parse_found_reply() -> None:
    """'stream: <name> FOUND' is infected, with the signature name."""
    assert parse_clamd_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0") == ScanResult(
        False, "Win.Test.EICAR_HDB-1"
    )


def test_parse_reply_tolerates_trailing_whitespace() -> None:
    """A newline before the NUL does not confuse the parser."""
    assert parse_clamd_reply(b"stream: OK\n\0") == ScanResult(True)


@pytest.mark.parametrize(
    "reply",
    [
        b"INSTREAM size limit exceeded. ERROR\0",
        b"stream: Can't allocate memory ERROR\0",
        b"garbage",
        b"",
        b"\xff\xfe\0",
        b"stream:OK\0",
    ],
)
def test_other_replies_raise_clamd_error(reply: bytes) -> None:
    """Errors and nonsense are ClamdError, never a silent 'clean'."""
    with pytest.raises(ClamdError, match="unexpected clamd reply"):
        parse_clamd_reply(reply)


async def test_clamd_over_tcp_reports_clean(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """Clean bytes stream to clamd and come back OK."""
    fake, url = tcp_clamd
    assert await ClamdScanner(url).scan(b"hello world") == ScanResult(True)
    assert fake.commands == [b"zINSTREAM\0"]
    assert fake.streams == [b"hello world"]


async def test_clamd_over_tcp_reports_malware(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """EICAR streamed to clamd comes back FOUND with the signature name."""
    _, url = tcp_clamd
    assert await ClamdScanner(url).scan(EICAR) == ScanResult(False, "Eicar-Signature")


async def test_large_upload_is_streamed_in_64_kib_chunks(
    tcp_clamd: tuple[FakeClamd, str],
) -> None:
    """A 150 KiB upload arrives as two full chunks and a remainder, intact."""
    fake, url = tcp_clamd
    data = bytes(range(256)) * 600
    assert await ClamdScanner(url).scan(data) == ScanResult(True)
    assert fake.chunk_sizes == [[CHUNK, CHUNK, len(data) - 2 * CHUNK]]
    assert fake.streams == [data]


async def test_empty_upload_sends_only_the_terminator(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """Zero bytes is just the command and the zero-length end marker."""
    fake, url = tcp_clamd
    assert await ClamdScanner(url).scan(b"") == ScanResult(True)
    assert fake.chunk_sizes == [[]]


async def test_clamd_error_reply_raises(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """A clamd refusing the stream (size limit) surfaces as ClamdError."""
    fake, url = tcp_clamd
    fake.reply = b"INSTREAM size limit exceeded. ERROR\0"
    with pytest.raises(ClamdError, match="size limit"):
        await ClamdScanner(url).scan(b"x" * 10)


async def test_clamd_over_unix_socket(unix_clamd: tuple[FakeClamd, str]) -> None:
    """A unix:// URL connects to the socket path, clean and infected alike."""
    fake, url = unix_clamd
    scanner = ClamdScanner(url)
    assert await scanner.scan(b"clean") == ScanResult(True)
    assert await scanner.scan(EICAR) == ScanResult(False, "Eicar-Signature")
    assert fake.streams == [b"clean", EICAR]


async def test_unreachable_clamd_raises_clamd_error() -> None:
    """Nothing listening on the port is ClamdError, not an OSError."""
    with pytest.raises(ClamdError, match="clamd unavailable"):
        await ClamdScanner(f"tcp://127.0.0.1:{_free_port()}").scan(b"data")


async def test_missing_unix_socket_raises_clamd_error(tmp_path: Path) -> None:
    """A unix socket path that does not exist is ClamdError."""
    with pytest.raises(ClamdError, match="clamd unavailable"):
        await ClamdScanner(f"unix://{tmp_path}/absent.ctl").scan(b"data")


async def test_clamd_timeout_raises_clamd_error(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """A zero time budget times out at once (no sleeping) and is ClamdError."""
    _, url = tcp_clamd
    with pytest.raises(ClamdError, match="clamd unavailable"):
        await ClamdScanner(url, timeout_s=0).scan(b"data")


def test_build_scanner_without_url_is_builtin() -> None:
    """No CLAMD_URL (unset or empty) means the built-in scanner."""
    assert isinstance(build_scanner(None), BuiltinScanner)
    assert isinstance(build_scanner(""), BuiltinScanner)


async def test_build_scanner_with_url_is_clamd(tcp_clamd: tuple[FakeClamd, str]) -> None:
    """A CLAMD_URL gives a clamd client that talks to that address."""
    fake, url = tcp_clamd
    scanner = build_scanner(url)
    assert isinstance(scanner, ClamdScanner)
    assert await scanner.scan(b"abc") == ScanResult(True)
    assert fake.streams == [b"abc"]
