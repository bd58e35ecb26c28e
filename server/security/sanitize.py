r"""User text sanitising, shared by every field that stores what people type.

Order (contract section 1): check the length in code points of the text as sent, strip C0/C1
control characters and DEL (keeping ``\n`` and ``\t``), normalise to NFC, then HTML-escape.
"""

from __future__ import annotations

import html
import re
import unicodedata

from server.errors import ValidationFailed

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
EMAIL_PATTERN = (
    r"^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
)
"""What :func:`clean_email` accepts, in any letter case (JSON Schema patterns have no flags)."""
_USERNAME = re.compile(r"^[a-z0-9_.-]{3,32}$")
EMAIL_SUGGESTION = "Use format: user@example.com"


def normalise(value: str) -> str:
    """Remove control characters (except newline and tab) and normalise to NFC."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", value))


def clean_text(
    value: str,
    *,
    field: str,
    max_length: int,
    min_length: int = 0,
    not_blank: bool = False,
) -> str:
    """Sanitise one text field and return the string to store.

    The length is counted in code points of ``value`` as given (what JSON Schema's
    ``maxLength`` counts), before anything is removed, normalised or escaped.

    Raises:
        ValidationFailed: too short, too long, or blank when ``not_blank``.
    """
    if not min_length <= len(value) <= max_length:
        raise ValidationFailed.field(
            field,
            f"{field} must be {min_length}..{max_length} characters",
            f"Use between {min_length} and {max_length} characters",
        )
    text = normalise(value)
    if not_blank and not text.strip():
        raise ValidationFailed.field(field, f"{field} must not be empty", "Write some text")
    return html.escape(text, quote=True)


def escape_for_search(value: str) -> str:
    """Sanitise a search term the way stored text was, so the two compare."""
    return html.escape(normalise(value), quote=True)


_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#x27;", "'"), ("&amp;", "&"))
"""What :func:`clean_text` escapes, undone in this order (``&amp;`` last, so ``&amp;lt;``
comes back as the ``&lt;`` someone typed)."""


def search_form(stored: str) -> str:
    """Stored text as search compares it: as typed (the escaping undone), lower-cased.

    The database applies the same function, ``sb_search_text`` (a SQL function on
    PostgreSQL, created by a migration; this one registered on SQLite), so ``amp`` does not
    find ``&amp;`` while ``&`` does.
    """
    for entity, char in _ESCAPES:
        stored = stored.replace(entity, char)
    return stored.lower()


def clean_email(value: str) -> str:
    """Validate an email address and return it lower-cased.

    Raises:
        ValidationFailed: not a plausible address.
    """
    email = value.strip().lower()
    local = email.partition("@")[0]
    # RFC 5321 limits: 254 characters in all, 64 before the @.
    if len(email) > 254 or len(local) > 64 or not _EMAIL.fullmatch(email):  # noqa: PLR2004
        raise ValidationFailed.field("email", "Email format invalid", EMAIL_SUGGESTION)
    return email


def clean_username(value: str) -> str:
    """Validate a username and return it lower-cased (unique case-insensitively).

    Raises:
        ValidationFailed: not 3..32 of ``[a-z0-9_.-]``.
    """
    username = value.lower()
    if not _USERNAME.fullmatch(username):
        raise ValidationFailed.field(
            "username",
            "Username must be 3..32 characters of a-z, 0-9, '_', '.', '-'",
            "Use letters, digits, '_', '.' or '-', e.g. jane_doe",
        )
    return username
