"""Sentry: PII scrubbing of events, and initialisation only when a DSN is set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk

from server.observability.redaction import REDACTED
from server.observability.sentry import init_sentry, scrub_event


def test_request_cookies_body_and_query_are_removed() -> None:
    """Cookies, the body and the query string never leave; headers are redacted."""
    event: dict[str, Any] = {
        "request": {
            "url": "https://api.example/api/v1/auth/login",
            "method": "POST",
            "cookies": {"refresh_token": "r"},
            "data": {"password": "hunter2"},
            "query_string": "token=abc",
            "headers": {"Authorization": "Bearer abc", "User-Agent": "curl/8", "X-Id": "a@b.io"},
        }
    }
    scrubbed = scrub_event(event, {})
    assert scrubbed["request"] == {
        "url": "https://api.example/api/v1/auth/login",
        "method": "POST",
        "headers": {"Authorization": REDACTED, "User-Agent": "curl/8", "X-Id": REDACTED},
    }


def test_request_headers_of_another_shape_are_left() -> None:
    """Headers that are not a mapping are not touched (the rest is still scrubbed)."""
    event: dict[str, Any] = {"request": {"headers": [["Accept", "json"]], "cookies": "sid=1"}}
    assert scrub_event(event, {}) == {"request": {"headers": [["Accept", "json"]]}}


def test_user_keeps_only_the_id() -> None:
    """Email, IP address and username are dropped from the user."""
    event: dict[str, Any] = {
        "user": {"id": "u1", "email": "jane@example.com", "ip_address": "203.0.113.9"}
    }
    assert scrub_event(event, {})["user"] == {"id": "u1"}


def test_user_without_id_becomes_empty() -> None:
    """A user with only personal details is emptied."""
    event: dict[str, Any] = {"user": {"email": "jane@example.com"}}
    assert scrub_event(event, {})["user"] == {}


def test_extra_and_contexts_are_redacted() -> None:
    """Secrets attached as extra data or contexts are masked."""
    event: dict[str, Any] = {
        "extra": {"password": "x", "note": "mail jane@example.com"},
        "contexts": {"auth": {"token": "t", "scheme": "jwt"}},
    }
    scrubbed = scrub_event(event, {})
    assert scrubbed["extra"] == {"password": REDACTED, "note": f"mail {REDACTED}"}
    assert scrubbed["contexts"] == {"auth": {"token": REDACTED, "scheme": "jwt"}}


def test_exception_values_log_entries_and_breadcrumbs_are_masked() -> None:
    """An address or a token in an error's text, its log line or a breadcrumb is masked."""
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
    event: dict[str, Any] = {
        "exception": {"values": [{"type": "ValueError", "value": "bad ada@example.com"}]},
        "logentry": {"message": "login %s", "formatted": "login ada@example.com"},
        "breadcrumbs": {
            "values": [
                {"message": f"Bearer {token}", "category": "log"},
                {"data": {"password": "hunter2", "url": "/x"}, "category": "http"},
            ]
        },
    }
    scrubbed = scrub_event(event, {})
    assert scrubbed["exception"]["values"][0]["value"] == f"bad {REDACTED}"
    assert scrubbed["logentry"]["formatted"] == f"login {REDACTED}"
    crumbs = scrubbed["breadcrumbs"]["values"]
    assert token not in crumbs[0]["message"] and crumbs[0]["category"] == "log"
    assert crumbs[1]["data"] == {"password": REDACTED, "url": "/x"}


def test_event_without_personal_parts_is_unchanged() -> None:
    """An event with no request, user, extra or contexts passes as it is."""
    event: dict[str, Any] = {"message": "boom", "level": "error", "user": None, "extra": "x"}
    assert scrub_event(event, {}) == {
        "message": "boom",
        "level": "error",
        "user": None,
        "extra": "x",
    }


@pytest.mark.parametrize("dsn", [None, ""])
def test_no_dsn_means_no_sentry(dsn: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SENTRY_DSN the SDK is never initialised."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: calls.append(options))
    assert init_sentry(dsn, "dev") is False
    assert calls == []


@pytest.fixture
def sentry_client_cleanup() -> Iterator[None]:
    """Close whatever client a test initialised and restore the inactive default."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.mark.usefixtures("sentry_client_cleanup")
def test_dsn_initialises_sentry_with_the_scrubber() -> None:
    """With a DSN, Sentry is on, PII off, tracing off, and events pass the scrubber."""
    assert init_sentry("http://public@127.0.0.1:9/1", "staging", "1.2.3") is True
    client = sentry_sdk.get_client()
    assert client.is_active() is True
    assert client.options["environment"] == "staging"
    assert client.options["release"] == "1.2.3"
    assert client.options["before_send"] is scrub_event
    assert client.options["traces_sample_rate"] == 0.0
    assert not client.options["send_default_pii"]
