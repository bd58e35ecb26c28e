"""Malware scanning of uploads: ClamAV's clamd when configured, else a built-in scanner.

The built-in scanner knows the EICAR test signature only; production deployments set
``CLAMD_URL`` (``tcp://host:3310`` or ``unix:///run/clamav/clamd.ctl``).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A scan verdict."""

    clean: bool
    signature: str | None = None


class Scanner(Protocol):
    """Something that can tell whether bytes carry malware."""

    async def scan(self, data: bytes) -> ScanResult:
        """Scan ``data``."""
        ...


class BuiltinScanner:
    """Detects the EICAR test file anywhere in the data."""

    async def scan(self, data: bytes) -> ScanResult:
        """Scan ``data`` for the EICAR signature."""
        if EICAR in data:
            return ScanResult(False, "Eicar-Test-Signature")
        return ScanResult(True)


class ClamdError(RuntimeError):
    """clamd could not be reached or answered nonsense."""


class ClamdScanner:
    """A client of clamd's ``INSTREAM`` command."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parsed = urlparse(url)
        self._unix_path = parsed.path if parsed.scheme == "unix" else None
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 3310
        self._timeout = timeout_s

    async def scan(self, data: bytes) -> ScanResult:
        """Stream ``data`` to clamd and parse its verdict.

        Raises:
            ClamdError: clamd is unreachable or its reply is not understood.
        """
        try:
            reply = await asyncio.wait_for(self._instream(data), self._timeout)
        except (OSError, TimeoutError) as exc:
            raise ClamdError(f"clamd unavailable: {exc}") from exc
        return parse_clamd_reply(reply)

    async def _instream(self, data: bytes) -> bytes:
        if self._unix_path:
            reader, writer = await asyncio.open_unix_connection(self._unix_path)
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(b"zINSTREAM\0")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                writer.write(struct.pack(">I", len(chunk)) + chunk)
            writer.write(struct.pack(">I", 0))
            await writer.drain()
            return await reader.readuntil(b"\0")
        finally:
            writer.close()


def parse_clamd_reply(reply: bytes) -> ScanResult:
    """Parse ``stream: OK`` or ``stream: <signature> FOUND``.

    Raises:
        ClamdError: any other reply (e.g. size limit exceeded).
    """
    text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    verdict = text.partition(": ")[2]
    if verdict == "OK":
        return ScanResult(True)
    if verdict.endswith(" FOUND"):
        return ScanResult(False, verdict.removesuffix(" FOUND"))
    raise ClamdError(f"unexpected clamd reply: {text!r}")


def build_scanner(clamd_url: str | None) -> Scanner:
    """Clamd when a URL is configured, else the built-in scanner."""
    return ClamdScanner(clamd_url) if clamd_url else BuiltinScanner()
