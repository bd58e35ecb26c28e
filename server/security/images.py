"""Image type detection by magic bytes (never by the client's filename or header)."""

from __future__ import annotations

PNG = "png"
JPEG = "jpeg"
WEBP = "webp"
EXTENSIONS = {PNG: "png", JPEG: "jpg", WEBP: "webp"}


def sniff_image(data: bytes) -> str | None:
    """Return ``png``, ``jpeg`` or ``webp`` from the leading bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":  # noqa: PLR2004
        return WEBP
    return None
