"""Image type detection by magic bytes."""

from __future__ import annotations

import pytest

from server.security.images import EXTENSIONS, JPEG, PNG, WEBP, sniff_image


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
        (b"\xff\xd8\xff", JPEG),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", WEBP),
        (b"RIFF\x00\x00\x00\x00WEBP", WEBP),
    ],
)
def test_known_formats_are_recognised(data: bytes, kind: str) -> None:
    """PNG, JPEG and WebP are told apart by their leading bytes."""
    assert sniff_image(data) == kind


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00",
        b"\x89PNG\r\n",
        b"\xff\xd8",
        b"RIFF\x00\x00\x00\x00WEB",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7",
    ],
)
def test_other_or_truncated_data_is_not_an_image(data: bytes) -> None:
    """GIF, SVG, WAV, PDF and truncated headers are refused."""
    assert sniff_image(data) is None


def test_every_type_has_a_file_extension() -> None:
    """Stored files get a canonical extension per detected type."""
    assert EXTENSIONS == {PNG: "png", JPEG: "jpg", WEBP: "webp"}
