"""Strict JSON request bodies: media type, size, nesting, and every bad field reported."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import pytest

from server.api.body import MAX_DEPTH, BodyDecoder
from server.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=20,
        extra={"message": "Name must be 3..20 characters", "suggestion": "Use a short name"},
    ),
]
Tag = Annotated[str, msgspec.Meta(max_length=5)]


class GroupBody(msgspec.Struct, forbid_unknown_fields=True):
    """A small request body: a constrained name, a list of tags, a count."""

    name: Name
    tags: list[Tag] = []
    size: int = 10


class Point(msgspec.Struct, forbid_unknown_fields=True):
    """A nested object."""

    x: int


class ShapeBody(msgspec.Struct, forbid_unknown_fields=True):
    """A body with a nested struct and an aliased field."""

    origin: Point
    label: str = msgspec.field(default="", name="displayLabel")


class RangeBody(msgspec.Struct, forbid_unknown_fields=True):
    """A body with a cross-field rule."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low must not exceed high")


JSON_TYPE = "application/json"


@pytest.fixture
def decoder() -> BodyDecoder[GroupBody]:
    """A decoder for the small group body."""
    return BodyDecoder(GroupBody)


def _fields(error: ValidationFailed) -> list[dict[str, str]]:
    fields: list[dict[str, str]] = error.details["fields"]
    return fields


def test_valid_body_decodes(decoder: BodyDecoder[GroupBody]) -> None:
    """A correct body becomes the struct, defaults filled in."""
    assert decoder.decode(b'{"name":"Algebra","tags":["math"]}', JSON_TYPE) == GroupBody(
        name="Algebra", tags=["math"]
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "application/vnd.studybuddy.v1+json;charset=UTF-8",
    ],
)
def test_json_media_types_are_accepted(decoder: BodyDecoder[GroupBody], content_type: str) -> None:
    """application/json, with parameters or a +json suffix, is JSON."""
    assert decoder.decode(b'{"name":"Algebra"}', content_type).name == "Algebra"


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/x-www-form-urlencoded", "application/jsonp", "json"],
)
def test_other_media_types_are_unsupported(
    decoder: BodyDecoder[GroupBody], content_type: str | None
) -> None:
    """A non-empty body that is not declared JSON is refused with 415."""
    with pytest.raises(UnsupportedMediaType, match="Content-Type: application/json"):
        decoder.decode(b'{"name":"Algebra"}', content_type)


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_empty_body_is_an_empty_object(raw: bytes) -> None:
    """No body at all is read as {} whatever the content type, so defaults apply."""

    class Options(msgspec.Struct, forbid_unknown_fields=True):
        verbose: bool = False

    assert BodyDecoder(Options).decode(raw, None) == Options()


def test_empty_body_still_needs_required_fields(decoder: BodyDecoder[GroupBody]) -> None:
    """{} is missing the required name."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b"", None)
    assert _fields(caught.value) == [{"field": "name", "message": "Field required"}]


def test_oversize_body_is_payload_too_large() -> None:
    """A body over max_bytes is 413 before any parsing (even with a bad media type)."""
    decoder = BodyDecoder(GroupBody, max_bytes=16)
    with pytest.raises(PayloadTooLarge, match="16 bytes"):
        decoder.decode(b'{"name":"Algebra 101"}', "text/plain")
    assert decoder.decode(b'{"name":"Alg"}', JSON_TYPE).name == "Alg"


def test_default_limit_is_64_kib(decoder: BodyDecoder[GroupBody]) -> None:
    """The default cap is 64 KiB."""
    assert decoder.max_bytes == 65536
    with pytest.raises(PayloadTooLarge):
        decoder.decode(b" " * 65537, JSON_TYPE)


def test_missing_field_is_reported(decoder: BodyDecoder[GroupBody]) -> None:
    """A required field absent from the body is named."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"tags":[]}', JSON_TYPE)
    assert caught.value.message == "Request validation failed"
    assert _fields(caught.value) == [{"field": "name", "message": "Field required"}]


def test_wrong_type_is_reported_as_such_not_with_the_fields_rule(
    decoder: BodyDecoder[GroupBody],
) -> None:
    """A number where a name goes: the type is what went wrong, not the name's length."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":42}', JSON_TYPE)
    assert _fields(caught.value) == [{"field": "name", "message": "Expected `str`, got `int`"}]


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        (b'{"name":null}', "Give a value"),  # required: leaving it out is no way out
        (b'{"name":"Algebra","size":null}', "Leave the field out to keep it"),
    ],
)
def test_null_is_refused_with_a_way_out_that_works(
    decoder: BodyDecoder[GroupBody], raw: bytes, suggestion: str
) -> None:
    """A null's suggestion depends on whether the field may be left out."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(raw, JSON_TYPE)
    (problem,) = _fields(caught.value)
    assert problem["message"] == "null is not allowed here"
    assert problem["suggestion"] == suggestion


def test_broken_constraint_uses_the_fields_own_message(decoder: BodyDecoder[GroupBody]) -> None:
    """Too short a name gets the custom text too."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":"ab"}', JSON_TYPE)
    assert _fields(caught.value)[0]["message"] == "Name must be 3..20 characters"


def test_plain_field_gets_msgspecs_message_without_the_path(
    decoder: BodyDecoder[GroupBody],
) -> None:
    """Without custom text the message is msgspec's, minus the '- at $...' suffix."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":"Algebra","size":"ten"}', JSON_TYPE)
    assert _fields(caught.value) == [{"field": "size", "message": "Expected `int`, got `str`"}]


def test_unknown_field_is_reported(decoder: BodyDecoder[GroupBody]) -> None:
    """A field the model does not have is named with a suggestion to remove it."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":"Algebra","admin":true}', JSON_TYPE)
    assert _fields(caught.value) == [
        {"field": "admin", "message": "Unknown field", "suggestion": "Remove this field"}
    ]


def test_every_problem_is_listed_together(decoder: BodyDecoder[GroupBody]) -> None:
    """Unknown, wrong-typed and bad list items are all reported in one error."""
    raw = b'{"admin":true,"name":1,"tags":["ok","toolong"],"size":"x"}'
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(raw, JSON_TYPE)
    assert _fields(caught.value) == [
        {"field": "admin", "message": "Unknown field", "suggestion": "Remove this field"},
        {"field": "name", "message": "Expected `str`, got `int`"},
        {"field": "tags[1]", "message": "Expected `str` of length <= 5"},
        {"field": "size", "message": "Expected `int`, got `str`"},
    ]


def test_list_item_path_names_the_index(decoder: BodyDecoder[GroupBody]) -> None:
    """A bad first tag is reported as tags[0]."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":"Algebra","tags":[7]}', JSON_TYPE)
    assert _fields(caught.value) == [{"field": "tags[0]", "message": "Expected `str`, got `int`"}]


def test_nested_field_path_uses_a_dot() -> None:
    """A bad field inside a nested object is reported as origin.x."""
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(ShapeBody).decode(b'{"origin":{"x":"left"}}', JSON_TYPE)
    assert _fields(caught.value) == [{"field": "origin.x", "message": "Expected `int`, got `str`"}]


def test_nested_unknown_field_is_reported_on_its_parent() -> None:
    """An unknown key inside a nested object is blamed on that object."""
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(ShapeBody).decode(b'{"origin":{"x":1,"y":2}}', JSON_TYPE)
    assert _fields(caught.value) == [
        {"field": "origin", "message": "Object contains unknown field `y`"}
    ]


def test_fields_are_named_as_clients_spell_them() -> None:
    """A renamed field is reported (and accepted) under its wire name."""
    decoder = BodyDecoder(ShapeBody)
    assert decoder.decode(b'{"origin":{"x":1},"displayLabel":"A"}', JSON_TYPE).label == "A"
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"origin":{"x":1},"displayLabel":5,"label":"A"}', JSON_TYPE)
    assert [problem["field"] for problem in _fields(caught.value)] == ["label", "displayLabel"]


@pytest.mark.parametrize("raw", [b'{"name":', b'{"name" "x"}', b"nope", b'{"name":"Alg"} x'])
def test_malformed_json_is_a_validation_error(decoder: BodyDecoder[GroupBody], raw: bytes) -> None:
    """Broken JSON is VALIDATION_ERROR with 'Malformed JSON' and msgspec's reason."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(raw, JSON_TYPE)
    assert caught.value.message.startswith("Malformed JSON: ")
    assert caught.value.details == {}


def test_malformed_after_a_bad_field_is_still_malformed(decoder: BodyDecoder[GroupBody]) -> None:
    """A wrong type followed by truncation is reported as malformed, not as a field error."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":5,"tags":[', JSON_TYPE)
    assert caught.value.message == "Malformed JSON: Input data was truncated"


def test_invalid_utf8_is_malformed(decoder: BodyDecoder[GroupBody]) -> None:
    """Bytes that are not UTF-8 inside a string are reported as such."""
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"name":"Alg\xff\xfe"}', JSON_TYPE)
    assert caught.value.message == "Malformed JSON: invalid UTF-8"


def test_body_that_is_not_an_object_is_refused(decoder: BodyDecoder[GroupBody]) -> None:
    """An array or a scalar body is refused as a whole."""
    for raw in (b"[1,2]", b'"name"', b"3"):
        with pytest.raises(ValidationFailed) as caught:
            decoder.decode(raw, JSON_TYPE)
        assert caught.value.message == "The body must be a JSON object"


def test_runaway_nesting_is_malformed_not_a_crash() -> None:
    """100,000 open brackets hit msgspec's recursion guard and become a 400."""
    decoder = BodyDecoder(GroupBody, max_bytes=200_000)
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b"[" * 100_000, JSON_TYPE)
    assert caught.value.message == "Malformed JSON: nesting too deep"


def test_deep_unknown_field_is_refused_by_depth() -> None:
    """An object nested 20 levels in an unknown field is refused for its depth."""
    nested: dict[str, Any] = {"leaf": 1}
    for _ in range(20):
        nested = {"a": nested}
    raw = json.dumps({"name": "Algebra", "junk": nested}).encode()
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(GroupBody).decode(raw, JSON_TYPE)
    assert caught.value.message == f"JSON nesting deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (500, f"JSON nesting deeper than {MAX_DEPTH} levels"),  # past Python's recursion limit
        (2000, "Malformed JSON: nesting too deep"),  # past msgspec's too
    ],
)
def test_hundreds_of_levels_in_a_field_are_a_400_not_a_crash(depth: int, message: str) -> None:
    """Nesting that Python's recursion limit stops (not msgspec's) is still a 400."""
    raw = b'{"name":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(GroupBody).decode(raw, JSON_TYPE)
    assert caught.value.message == message


def _nested_body(depth: int) -> bytes:
    """A body whose deepest value sits ``depth`` levels down (the body object is level 1)."""
    nested: Any = 1
    for _ in range(depth - 3):
        nested = [nested]
    return json.dumps({"name": "Algebra", "junk": {"k": nested}}).encode()


def test_nesting_at_the_limit_is_diagnosed_normally() -> None:
    """Sixteen levels (leaf value included) is allowed: the unknown field is reported."""
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(GroupBody).decode(_nested_body(MAX_DEPTH), JSON_TYPE)
    assert [problem["field"] for problem in _fields(caught.value)] == ["junk"]


def test_one_level_over_the_limit_is_refused() -> None:
    """Seventeen levels is refused for its depth."""
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(GroupBody).decode(_nested_body(MAX_DEPTH + 1), JSON_TYPE)
    assert caught.value.message == f"JSON nesting deeper than {MAX_DEPTH} levels"


def test_cross_field_rule_reports_the_models_message() -> None:
    """When every field is fine alone, the model's own rule explains the failure."""
    decoder = BodyDecoder(RangeBody)
    assert decoder.decode(b'{"low":1,"high":2}', JSON_TYPE) == RangeBody(low=1, high=2)
    with pytest.raises(ValidationFailed) as caught:
        decoder.decode(b'{"low":5,"high":1}', JSON_TYPE)
    assert caught.value.message == "low must not exceed high"
    assert caught.value.details == {}


def test_duplicate_keys_are_reported_via_the_model() -> None:
    """A bad first copy of a duplicated key, hidden from the per-field check, still fails."""
    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(GroupBody).decode(b'{"name":5,"name":"Algebra"}', JSON_TYPE)
    assert "Expected `str`, got `int`" in caught.value.message


def test_rule_that_passes_on_the_second_look_gives_a_generic_error() -> None:
    """A model rule that depends on outside state and then passes still yields a 400."""
    looks: list[int] = []

    class Flaky(msgspec.Struct):
        value: int

        def __post_init__(self) -> None:
            looks.append(self.value)
            if len(looks) == 1:
                raise ValueError("first look fails")

    with pytest.raises(ValidationFailed) as caught:
        BodyDecoder(Flaky).decode(b'{"value":1}', JSON_TYPE)
    assert caught.value.message == "Request validation failed"
    assert caught.value.details == {}
    assert looks == [1, 1]


def test_model_must_be_a_struct() -> None:
    """Building a decoder for something that is not a msgspec Struct fails at once."""
    with pytest.raises(TypeError, match="is not a msgspec Struct"):
        BodyDecoder(dict)
    with pytest.raises(TypeError, match="is not a msgspec Struct"):
        BodyDecoder(int)


class CountBody(msgspec.Struct, forbid_unknown_fields=True):
    """Integers, one nested in a list, and a float."""

    n: Annotated[int, msgspec.Meta(ge=2, le=1000)]
    seqs: list[int] = []
    ratio: float = 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"n": 30.0}', CountBody(n=30)),
        (b'{"n": 3e1, "seqs": [1.0, 2]}', CountBody(n=30, seqs=[1, 2])),
        (b'{"n": 30, "ratio": 2.0}', CountBody(n=30, ratio=2.0)),
    ],
)
def test_integral_numbers_are_integers(raw: bytes, expected: CountBody) -> None:
    """Issue 16: JSON Schema's ``integer`` includes 30.0, which msgspec alone refuses."""
    assert BodyDecoder(CountBody).decode(raw, "application/json") == expected


@pytest.mark.parametrize(
    "raw", [b'{"n": 30.5}', b'{"n": 3000.0}', b'{"n": 1.0}', b'{"n": "30"}', b'{"n": 30.0, "x": 1}']
)
def test_other_numbers_stay_refused(raw: bytes) -> None:
    with pytest.raises(ValidationFailed):
        BodyDecoder(CountBody).decode(raw, "application/json")
