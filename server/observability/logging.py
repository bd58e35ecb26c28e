"""One JSON object per log line, with the request context and no secrets."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from server.observability.context import request_id_var, user_id_var
from server.observability.redaction import redact, redact_text

_encoder = msgspec.json.Encoder(enc_hook=str)

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Format records as JSON with ``timestamp, level, logger, message, request_id, user_id``.

    Fields passed with ``extra=`` are added after redaction.
    """

    ORDER: ClassVar[tuple[str, ...]] = ("timestamp", "level", "logger", "message")

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single JSON line."""
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
            "request_id": request_id_var.get(),
            "user_id": user_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = redact(value, key)
        if record.exc_info:
            out["exception"] = redact_text(self.formatException(record.exc_info))
        return _encoder.encode(out).decode()


class ClientFaultFilter(logging.Filter):
    """Reports by uvicorn of a client's own fault: INFO without a traceback, not ERROR.

    uvicorn logs a text frame of invalid UTF-8 with ``logger.exception``, although the client
    is told (close 1007) and the server is fine: any client could fill the error log, and
    Sentry, at will.
    """

    MESSAGES: ClassVar[frozenset[str]] = frozenset({"Invalid UTF-8 sequence received from client."})

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a known client fault; keep it only where INFO is logged."""
        if record.msg not in self.MESSAGES or record.levelno < logging.ERROR:
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def configure_logging(level: str) -> None:
    """Send every logger (uvicorn's included) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "taskiq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The SQLite driver logs each statement with its parameters at DEBUG: password hashes,
    # search terms. DB_ECHO is the switch for statements, documented as such.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(each, ClientFaultFilter) for each in uvicorn_errors.filters):
        uvicorn_errors.addFilter(ClientFaultFilter())
