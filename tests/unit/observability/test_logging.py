"""JSON log lines: one object per record, request context, redaction, exceptions."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from server.observability.context import request_id_var, user_id_var
from server.observability.logging import ClientFaultFilter, JsonFormatter, configure_logging
from server.observability.redaction import REDACTED

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLWJ5dGVz"


def _record(
    message: str = "hello %s",
    args: tuple[Any, ...] = ("world",),
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
    level: int = logging.INFO,
) -> logging.LogRecord:
    logger = logging.getLogger("studybuddy.test")
    return logger.makeRecord(logger.name, level, __file__, 10, message, args, exc_info, extra=extra)


def _format(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


@pytest.fixture
def request_context() -> Iterator[None]:
    """A request id and user id set as the middleware would."""
    request_token = request_id_var.set("req-123")
    user_token = user_id_var.set("user-9")
    yield
    user_id_var.reset(user_token)
    request_id_var.reset(request_token)


def test_record_is_one_json_object_with_the_required_keys() -> None:
    """timestamp, level, logger, message, request_id and user_id come first, in order."""
    record = _record()
    record.created = 1_706_700_000.123456
    out = _format(record)
    assert list(out)[:6] == ["timestamp", "level", "logger", "message", "request_id", "user_id"]
    assert out["timestamp"] == "2024-01-31T11:20:00.123Z"
    assert out["level"] == "INFO"
    assert out["logger"] == "studybuddy.test"
    assert out["message"] == "hello world"


def test_without_request_context_ids_are_null() -> None:
    """Outside a request the ids are present but null."""
    out = _format(_record())
    assert out["request_id"] is None
    assert out["user_id"] is None


@pytest.mark.usefixtures("request_context")
def test_request_context_is_included() -> None:
    """The current request and user ids are read from contextvars."""
    out = _format(_record())
    assert (out["request_id"], out["user_id"]) == ("req-123", "user-9")


def test_extra_fields_are_added_and_redacted() -> None:
    """extra= fields appear at top level, secrets masked, odd objects stringified."""

    class Route:
        def __str__(self) -> str:
            return "/api/v1/groups"

    out = _format(
        _record(
            extra={
                "password": "x",
                "status": 201,
                "route": Route(),
                "body": {"email": "jane@example.com", "token": "t"},
            }
        )
    )
    assert out["password"] == REDACTED
    assert out["status"] == 201
    assert out["route"] == "/api/v1/groups"
    assert out["body"] == {"email": REDACTED, "token": REDACTED}


def test_private_and_standard_attributes_are_not_copied() -> None:
    """LogRecord internals and underscore-prefixed extras stay out of the line."""
    out = _format(_record(extra={"_internal": 1, "color_message": "\x1b[32mhi"}))
    assert "_internal" not in out
    assert "color_message" not in out
    for internal in ("args", "msg", "pathname", "lineno", "levelno", "exc_info", "created"):
        assert internal not in out


def test_jwt_in_the_message_is_masked() -> None:
    """A token pasted into a log message does not reach the log."""
    out = _format(_record("refresh with %s failed", (JWT,)))
    assert out["message"] == f"refresh with {REDACTED} failed"


def test_exception_text_is_included_and_redacted() -> None:
    """exc_info adds the traceback text, with secrets in it masked."""
    try:
        raise RuntimeError(f"bad token {JWT}")
    except RuntimeError:
        record = _record("boom", (), exc_info=sys.exc_info(), level=logging.ERROR)
    out = _format(record)
    assert out["level"] == "ERROR"
    assert "Traceback (most recent call last)" in out["exception"]
    assert "RuntimeError: bad token [REDACTED]" in out["exception"]
    assert JWT not in json.dumps(out)


def test_no_exception_key_without_exc_info() -> None:
    """Ordinary records have no exception field."""
    assert "exception" not in _format(_record())


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and uvicorn's loggers back after configure_logging."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "taskiq")
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in names
    }
    access_disabled = logging.getLogger("uvicorn.access").disabled
    filters = logging.getLogger("uvicorn.error").filters[:]
    yield
    logging.getLogger("uvicorn.error").filters[:] = filters
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
    logging.getLogger("uvicorn.access").disabled = access_disabled


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_sends_json_lines_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """After configuring, any logger (uvicorn's included) writes JSON lines to stdout."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.NullHandler())
    configure_logging("warning")
    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert uvicorn_error.handlers == []
    assert uvicorn_error.propagate is True
    assert logging.getLogger("uvicorn.access").disabled is True

    logging.getLogger("studybuddy.test").info("too quiet to show")
    uvicorn_error.warning("port %d busy", 8000)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert (line["logger"], line["level"], line["message"]) == (
        "uvicorn.error",
        "WARNING",
        "port 8000 busy",
    )


@pytest.mark.usefixtures("restore_logging")
def test_debug_leaves_out_the_sqlite_drivers_statements(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The SQLite driver logs each statement with its parameters (hashes too) at DEBUG."""
    configure_logging("debug")
    logging.getLogger("aiosqlite").debug("executing INSERT ... ('secret parameters')")
    logging.getLogger("studybuddy.test").debug("our own debug line")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message"] for line in lines] == ["our own debug line"]


@pytest.mark.parametrize(("level", "shown"), [("info", True), ("warning", False)])
@pytest.mark.usefixtures("restore_logging")
def test_a_clients_invalid_utf8_is_not_a_server_error(
    capsys: pytest.CaptureFixture[str], level: str, *, shown: bool
) -> None:
    """A client's bad UTF-8, which uvicorn logs as an exception, is INFO with no traceback."""
    configure_logging(level)
    configure_logging(level)  # a second app in the process adds no second filter
    uvicorn_error = logging.getLogger("uvicorn.error")
    try:
        b"\xff".decode()
    except UnicodeDecodeError:
        uvicorn_error.exception("Invalid UTF-8 sequence received from client.")
    uvicorn_error.error("a real error stays one")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [("INFO", False)] if shown else []
    assert [(line["level"], "exception" in line) for line in lines[:-1]] == expected
    assert lines[-1]["level"] == "ERROR"
    assert sum(isinstance(f, ClientFaultFilter) for f in uvicorn_error.filters) == 1
