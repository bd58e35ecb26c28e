r"""User text fields as the OpenAPI document states them and the body decoder enforces them.

Lengths are code points of the text as sent (contract section 1: before HTML escaping; also
before control characters are removed), which is what JSON Schema's ``minLength`` and
``maxLength`` count. A field that must not be blank also has a ``pattern``: at least one
character that is neither whitespace (as Python's ``str.strip`` sees it) nor a control
character the server removes (C0 and C1 except ``\n`` and ``\t``, and DEL).
"""

from __future__ import annotations

import msgspec

VISIBLE = r"[^\s\x00-\x08\x0b-\x1f\x7f-\x9f]"
"""Matches (searches) text that is not blank once control characters are removed."""


def text_meta(
    field: str, *, max_length: int, min_length: int = 0, blank: bool = True, example: str
) -> msgspec.Meta:
    """The constraints of one user text field, with its example and its error wording."""
    rule = f"{min_length}..{max_length} characters"
    if not blank:
        rule += ", not only spaces or control characters"
    return msgspec.Meta(
        min_length=min_length,
        max_length=max_length,
        pattern=None if blank else VISIBLE,
        examples=[example],
        description=(
            f"{rule}, counted in code points as sent. Control characters other than newline "
            "and tab are removed, Unicode is NFC-normalised and HTML is escaped before storage."
        ),
        extra={
            "message": f"{field} must be {rule}",
            "suggestion": f"Use between {min_length} and {max_length} characters",
        },
    )
