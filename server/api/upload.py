"""One file from a ``multipart/form-data`` body, read into memory within a size limit.

A streaming parse (python-multipart, the parser Starlette itself uses) that keeps only the
wanted field, never spools to temporary files, and turns every malformed body into a 400.
"""

from __future__ import annotations

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from server.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed


class _Collector:
    """Parser callbacks that keep the bytes of one named field."""

    def __init__(self, field: str, limit: int) -> None:
        self.field = field.encode()
        self.limit = limit
        self.data: bytearray | None = None
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._wanted = False

    def on_part_begin(self) -> None:
        self._headers, self._wanted = {}, False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._wanted = params.get(b"name") == self.field and self.data is None
        if self._wanted:
            self.data = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._wanted and self.data is not None:
            self.data += data[start:end]
            if len(self.data) > self.limit:
                raise PayloadTooLarge(f"The file is limited to {self.limit} bytes")

    def on_end(self) -> None:
        self.ended = True

    def callbacks(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in dir(self) if name.startswith("on_")}


async def read_upload(request: Request, field: str, limit: int) -> bytes:
    """The bytes of the multipart field ``field``.

    Raises:
        UnsupportedMediaType: not multipart/form-data with a boundary.
        PayloadTooLarge: the field is over ``limit`` bytes.
        ValidationFailed: a malformed body, or no such field.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(f"Upload the file as multipart/form-data in the field '{field}'")
    collector = _Collector(field, limit)
    try:
        parser = MultipartParser(boundary, callbacks=collector.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
    except FormParserError as exc:
        raise ValidationFailed(f"Malformed multipart body: {exc}") from None
    if not collector.ended:
        raise ValidationFailed("Malformed multipart body: it ends before its closing boundary")
    if collector.data is None:
        raise ValidationFailed.field(field, f"Send the file in the multipart field '{field}'")
    return bytes(collector.data)
