"""Strict JSON request bodies: media type, size, depth, types, and field-level errors."""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar, cast

import msgspec

from server.errors import FieldProblem, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

T = TypeVar("T")

MAX_DEPTH = 16
_JSON_TYPE = re.compile(r"^application/([\w.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_any_decoder = msgspec.json.Decoder()
_MALFORMED = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def given(value: T | msgspec.UnsetType) -> T | None:
    """A PATCH field's value; None when the body left it out."""
    return None if isinstance(value, msgspec.UnsetType) else value


class BodyDecoder(Generic[T]):
    """Decode request bodies into ``model``; reports every bad field, not just the first.

    A field's ``Meta(extra={"message": ..., "suggestion": ...})`` supplies the text shown to
    clients when that field's constraints are broken.
    """

    def __init__(self, model: type[T], max_bytes: int = 64 * 1024) -> None:
        self.model = model
        self.max_bytes = max_bytes
        self._decoder = msgspec.json.Decoder(model)
        info = msgspec.inspect.type_info(model)
        if not isinstance(info, msgspec.inspect.StructType):
            raise TypeError(f"{model!r} is not a msgspec Struct")
        self._fields = {field.encode_name: field for field in info.fields}
        self._field_decoders = {
            field.encode_name: msgspec.json.Decoder(spec.type)
            for field, spec in zip(
                info.fields, msgspec.structs.fields(cast(Any, model)), strict=True
            )
        }

    def decode(self, raw: bytes, content_type: str | None) -> T:
        """Return the decoded body.

        Raises:
            UnsupportedMediaType: not ``application/json``.
            PayloadTooLarge: over ``max_bytes``.
            ValidationFailed: malformed JSON or bad fields, listed in ``details.fields``.
        """
        if len(raw) > self.max_bytes:
            raise PayloadTooLarge(f"JSON bodies are limited to {self.max_bytes} bytes")
        if not raw.strip():
            raw = b"{}"
        elif not content_type or not _JSON_TYPE.match(content_type):
            raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json")
        try:
            return self._decoder.decode(raw)
        except msgspec.ValidationError:
            integral = self._with_integral_floats(raw)
            if integral is not None:
                return integral
            raise self._diagnose(raw) from None
        except _MALFORMED as exc:
            raise _malformed(exc) from None

    def _with_integral_floats(self, raw: bytes) -> T | None:
        """The body decoded with ``2.0`` taken as ``2``, or None if that does not help.

        JSON Schema's ``integer`` is a mathematical integer, so ``2.0`` and ``2e0`` are
        integers to every client that reads the OpenAPI document; msgspec's ``int`` is not.
        """
        try:
            value = _any_decoder.decode(raw)
        except _MALFORMED:
            return None
        if _depth(value) > MAX_DEPTH:  # _integral recurses: _diagnose refuses it instead
            return None
        changed = _integral(value)
        if changed is value:
            return None
        try:
            return msgspec.convert(changed, self.model)
        except msgspec.ValidationError:
            return None

    def _diagnose(self, raw: bytes) -> ValidationFailed:
        try:
            value = _any_decoder.decode(raw)
        except _MALFORMED as exc:
            return _malformed(exc)
        if not isinstance(value, dict):
            return ValidationFailed("The body must be a JSON object")
        if _depth(value) > MAX_DEPTH:
            return ValidationFailed(f"JSON nesting deeper than {MAX_DEPTH} levels")
        problems = [
            FieldProblem(name, "Unknown field", "Remove this field")
            for name in value
            if name not in self._fields
        ]
        for name, field in self._fields.items():
            problem = self._check_field(name, field, value)
            if problem:
                problems.append(problem)
        if not problems:  # a cross-field rule of the model itself
            try:
                self._decoder.decode(raw)
            except msgspec.ValidationError as exc:
                return ValidationFailed(str(exc))
        return ValidationFailed("Request validation failed", problems)

    def _check_field(
        self, name: str, field: msgspec.inspect.Field, body: dict[str, Any]
    ) -> FieldProblem | None:
        if name not in body:
            return FieldProblem(name, "Field required") if field.required else None
        try:
            self._field_decoders[name].decode(msgspec.json.encode(body[name]))
        except msgspec.ValidationError as exc:
            return _problem(name, field, str(exc))
        return None


def _problem(name: str, field: msgspec.inspect.Field, error: str) -> FieldProblem:
    """The field's own message for a broken rule; msgspec's for a wrong type or a null."""
    spec = field.type
    extra = spec.extra if isinstance(spec, msgspec.inspect.Metadata) and spec.extra else {}
    match = _AT_PATH.search(error)
    suffix = match.group("path") if match else ""
    path = name + ("." if suffix and not suffix.startswith("[") else "") + suffix
    plain = _AT_PATH.sub("", error)
    if plain.endswith("got `null`"):  # a field's own rules are not what went wrong
        keep = "Give a value" if field.required else "Leave the field out to keep it"
        return FieldProblem(path, "null is not allowed here", keep)
    if _WRONG_TYPE.search(plain):  # "Expected `str`, got `int`": the type is what went wrong
        return FieldProblem(path, plain)
    return FieldProblem(path, extra.get("message", plain), extra.get("suggestion"))


_WRONG_TYPE = re.compile(r"^Expected `[^`]+`, got `[^`]+`$")
"""msgspec's message for a value of the wrong JSON type (not a broken length or range)."""


def _malformed(exc: Exception) -> ValidationFailed:
    if isinstance(exc, RecursionError):
        reason = "nesting too deep"
    elif isinstance(exc, UnicodeDecodeError):
        reason = "invalid UTF-8"
    else:
        reason = str(exc)
    return ValidationFailed(f"Malformed JSON: {reason}")


def _integral(value: Any) -> Any:
    """``value`` with every integral float made an int; the same object if none was."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        items = {key: _integral(item) for key, item in value.items()}
        same = all(items[key] is value[key] for key in value)
        return value if same else items
    if isinstance(value, list):
        converted = [_integral(item) for item in value]
        same = all(new is old for new, old in zip(converted, value, strict=True))
        return value if same else converted
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            stack.extend((child, level + 1) for child in children)
    return deepest
