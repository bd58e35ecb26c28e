"""The OpenAPI document states what the server accepts, with an example for every operation."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
import pytest

from server.api.body import BodyDecoder
from server.api.operation import Operation
from server.api.text import VISIBLE
from server.app import create_app, operations
from server.errors import ValidationFailed

OPS = operations()


@cache
def document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app().state.openapi
    return doc


def _operation(op: Operation[Any]) -> dict[str, Any]:
    path = re.sub(r"{(\w+):\w+}", r"{\1}", op.path)
    spec: dict[str, Any] = document()["paths"][path][op.method.lower()]
    return spec


def _param(op: Operation[Any], name: str) -> dict[str, Any] | None:
    found = [p for p in _operation(op)["parameters"] if p["name"] == name]
    return found[0] if found else None


def _by_id(operation_id: str) -> Operation[Any]:
    return next(op for op in OPS if op.operation_id == operation_id)


def _body_schema(operation_id: str) -> dict[str, Any]:
    spec = _operation(_by_id(operation_id))["requestBody"]["content"]["application/json"]
    ref = spec["schema"]["$ref"].rsplit("/", 1)[1]
    schema: dict[str, Any] = document()["components"]["schemas"][ref]
    return schema


def _property(operation_id: str, name: str) -> dict[str, Any]:
    prop: dict[str, Any] = _body_schema(operation_id)["properties"][name]
    options = prop.get("anyOf", [prop])
    return next(option for option in options if option.get("type") != "null")


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.operation_id)
def test_every_operation_has_examples_the_server_accepts(op: Operation[Any]) -> None:
    """The request example decodes with the operation's own decoder; every answer has one."""
    spec = _operation(op)
    if op.body is not None:
        example = spec["requestBody"]["content"]["application/json"]["example"]
        BodyDecoder(op.body).decode(msgspec.json.encode(example), "application/json")
    for status, answer in spec["responses"].items():
        content = answer.get("content", {}).get("application/json")
        if status.startswith("2") and content is not None:
            assert op.response is not None, "an answer with a body declares its type"
            msgspec.convert(content["example"]["data"], op.response, strict=False)


@pytest.mark.parametrize("op", [op for op in OPS if op.listing], ids=lambda op: op.operation_id)
def test_list_parameters_declare_their_values(op: Operation[Any]) -> None:
    """Issue 16: filter values and date formats were undeclared on every list endpoint."""
    assert op.listing is not None
    page = _param(op, "page")
    assert page is not None
    assert page["schema"]["maximum"] == 1_000_000_000
    for name in ("created_after", "created_before"):
        declared = _param(op, name)
        assert (declared is not None) == (op.listing.created is not None)
        if declared is not None:
            assert declared["schema"]["anyOf"] == [{"format": "date"}, {"format": "date-time"}]
    assert (_param(op, "search") is not None) == bool(op.listing.search)
    sort = _param(op, "sort")
    assert sort is not None
    assert re.search(sort["schema"]["pattern"], op.listing.default_sort)
    assert not re.search(sort["schema"]["pattern"], "unknown")
    for name in op.listing.filters:
        assert _param(op, f"filter[{name}]") is not None


def test_choice_filters_match_their_values_in_any_case() -> None:
    groups = _by_id("list_groups")
    visibility = _param(groups, "filter[visibility]")
    member = _param(groups, "filter[member]")
    assert visibility is not None
    assert member is not None
    pattern = visibility["schema"]["pattern"]
    assert all(re.search(pattern, v) for v in ("public", "PUBLIC", "Private"))
    assert not any(re.search(pattern, v) for v in ("", "public ", "publicity"))
    assert re.search(member["schema"]["pattern"], "Me")
    assert not re.search(member["schema"]["pattern"], "")


@pytest.mark.parametrize(
    ("operation_id", "field", "low", "high", "not_blank"),
    [
        ("create_group", "name", 3, 100, True),
        ("create_group", "description", 0, 2000, False),
        ("create_assignment", "title", 1, 200, True),
        ("post_message", "body", 1, 4000, True),
        ("update_me", "display_name", 1, 100, True),
        ("register", "display_name", 1, 100, True),
    ],
)
def test_text_limits_are_code_points_as_sent(
    operation_id: str, field: str, low: int, high: int, not_blank: bool
) -> None:
    """The maxLength is enforced on what is sent: control characters count (issue 16)."""
    prop = _property(operation_id, field)
    assert (prop.get("minLength", 0), prop["maxLength"]) == (low, high)
    assert (prop.get("pattern") == VISIBLE) == not_blank
    decoder = BodyDecoder(_by_id(operation_id).body)  # type: ignore[arg-type]
    example = _operation(_by_id(operation_id))["requestBody"]["content"]["application/json"]
    too_long = {**example["example"], field: "x" * (high - 1) + "\x0f\x10"}
    with pytest.raises(ValidationFailed):
        decoder.decode(msgspec.json.encode(too_long), "application/json")


def test_blank_means_no_visible_character() -> None:
    for blank in ("", " ", "\x18", "\t\n", "\x00\x85\u3000"):
        assert not re.search(VISIBLE, blank)
    for text in ("a", " a ", "\x18x", "\u00e9"):
        assert re.search(VISIBLE, text)


@pytest.mark.parametrize(
    ("due", "valid"),
    [
        ("2026-12-01T17:00:00Z", True),
        ("2024-02-29T00:00:00+01:00", True),
        ("2000-02-29t23:59:59.123456789z", True),
        ("2099-12-31T23:59:59-05:00", True),
        ("0273-05-01T10:00:00Z", False),  # issue 16: the year 273 was accepted
        ("2100-01-01T00:00:00Z", False),
        ("2025-02-29T00:00:00Z", False),
        ("2026-04-31T00:00:00Z", False),
        ("2026-12-01T17:00:00", False),
        ("2026-12-01T24:00:00Z", False),
    ],
)
def test_due_dates_are_bounded_real_dates(due: str, valid: bool) -> None:
    """The pattern is the whole rule: the server accepts exactly what it matches."""
    assert bool(re.search(_property("create_assignment", "due_at")["pattern"], due)) is valid
    body = msgspec.json.encode({"title": "Problem set", "due_at": due})
    decoder = BodyDecoder(_by_id("create_assignment").body)  # type: ignore[arg-type]
    if valid:
        decoder.decode(body, "application/json")
    else:
        with pytest.raises(ValidationFailed):
            decoder.decode(body, "application/json")


def test_registration_and_mfa_state_their_rules() -> None:
    """Issue 16: valid-looking bodies were refused for rules the document did not state."""
    email = _property("register", "email")["pattern"]
    assert re.search(email, "Jane.Doe@Example.com")
    assert not re.search(email, "jane@example.c")
    password = _property("register", "password")
    assert "000000000000" in password["not"]["enum"]
    assert "common-password" in password["description"]
    assert re.search(_property("register", "username")["pattern"], "Jane_Doe")
    code = _property("mfa_enable", "code")["pattern"]
    assert re.search(code, "123456")
    assert not any(re.search(code, c) for c in ("", "12345", "12345a"))


def test_a_repeated_message_post_documents_its_200() -> None:
    responses = _operation(_by_id("post_message"))["responses"]
    assert {"200", "201"} <= set(responses)
    schema = responses["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["message"]["const"] == "Success"


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.operation_id)
def test_every_operation_lists_the_statuses_any_request_may_meet(op: Operation[Any]) -> None:
    """400, 429, 500 and 503 everywhere; 413 and 415 wherever a JSON body is read."""
    statuses = set(_operation(op)["responses"])
    assert {"400", "429", "500", "503"} <= statuses
    if op.body is not None:
        assert {"413", "415"} <= statuses


@pytest.mark.parametrize("op", [op for op in OPS if op.body], ids=lambda op: op.operation_id)
def test_a_body_is_required_only_when_it_has_required_fields(op: Operation[Any]) -> None:
    """PATCH bodies whose fields are all optional may be left out (the server takes ``{}``)."""
    info = msgspec.inspect.type_info(op.body)
    assert isinstance(info, msgspec.inspect.StructType)
    required = any(field.required for field in info.fields)
    assert _operation(op)["requestBody"]["required"] is required


def test_creations_link_to_the_operations_on_what_they_created() -> None:
    links = _operation(_by_id("create_group"))["responses"]["201"]["links"]
    assert links["get_group"]["parameters"] == {"group_id": "$response.body#/data/id"}
    nested = _operation(_by_id("create_assignment"))["responses"]["201"]["links"]
    assert nested["get_assignment"]["parameters"] == {
        "group_id": "$request.path.group_id",
        "assignment_id": "$response.body#/data/id",
    }
