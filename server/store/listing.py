"""One helper for every list endpoint: pagination, filters, sort, search and date range.

A resource declares a :class:`ListSpec` (which names clients may use and what they mean in
SQL); :func:`parse_list_query` validates query parameters against it and
:func:`apply_list_query` turns the result into a statement.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, Text, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from server.errors import FieldProblem, ValidationFailed
from server.security.sanitize import escape_for_search, search_form

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000_000
"""Past it the row offset would not fit the database's integers; such a page is refused."""
MOMENT_SCHEMA: Mapping[str, Any] = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "examples": ["2026-09-01", "2026-09-01T08:00:00Z"],
}
"""A date (midnight UTC) or an RFC 3339 date-time with its zone, as :func:`parse_moment` reads."""
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
MAX_INT_DIGITS = 18
_DIGITS = re.compile(r"[0-9]+")

ClauseBuilder = Callable[[str, uuid.UUID | None], ColumnElement[bool]]
Column = ColumnElement[Any] | QueryableAttribute[Any]
"""A mapped attribute or SQL expression usable in WHERE and ORDER BY."""
AnySelect = Select[*tuple[Any, ...]]
"""A SELECT of any columns."""


@dataclass(frozen=True, slots=True)
class FilterDef:
    """A ``filter[<name>]`` parameter: builds a WHERE clause from the raw value.

    The builder receives the value and the viewer's id and raises ``ValueError`` on a bad
    value; ``schema`` says in the OpenAPI document which values it accepts.
    """

    build: ClauseBuilder
    description: str = ""
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


def text_filter(column: Column, description: str = "") -> FilterDef:
    """Exact, case-insensitive match on a text column of sanitised user text."""

    def build(value: str, _viewer: uuid.UUID | None) -> ColumnElement[bool]:
        # lower-cased by the database on both sides: Python's lower() differs from it
        # (Greek final sigma, Turkish dotted I), and the value would then never match
        return func.lower(column) == func.lower(literal(escape_for_search(value), Text))

    return FilterDef(build, description)


def choice_filter(column: Column, choices: tuple[str, ...], description: str = "") -> FilterDef:
    """Exact match on a column holding one of ``choices`` (stored lower-case; index-friendly)."""

    def build(value: str, _viewer: uuid.UUID | None) -> ColumnElement[bool]:
        wanted = value.lower()
        if wanted not in choices:
            raise ValueError(f"use one of {', '.join(choices)}")
        return column == wanted

    return FilterDef(
        build,
        description or f"One of: {', '.join(choices)} (case-insensitive).",
        choice_schema(choices),
    )


def choice_schema(choices: tuple[str, ...]) -> dict[str, Any]:
    """A string schema matching ``choices`` in any letter case (JSON Schema has no flags)."""
    alternatives = "|".join("".join(_any_case(char) for char in choice) for choice in choices)
    return {"type": "string", "pattern": f"^({alternatives})$", "examples": [choices[0]]}


def _any_case(char: str) -> str:
    if char.lower() != char.upper():
        return f"[{char.lower()}{char.upper()}]"
    return "\\" + char if char in "\\.^$*+?()[]{}|/" else char


def datetime_filter(column: Column, *, before: bool, description: str = "") -> FilterDef:
    """``>=`` (or ``<`` when ``before``) a date or datetime."""

    def build(value: str, _viewer: uuid.UUID | None) -> ColumnElement[bool]:
        moment = parse_moment(value)
        return column < moment if before else column >= moment

    return FilterDef(build, description, MOMENT_SCHEMA)


@dataclass(frozen=True, slots=True)
class ListSpec:
    """What a list endpoint lets clients filter, sort and search on."""

    sorts: Mapping[str, Column]
    default_sort: str
    tiebreak: Column
    filters: Mapping[str, FilterDef] = field(default_factory=dict)
    search: tuple[Column, ...] = ()
    created: Column | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list request: WHERE clauses, ORDER BY and the page window."""

    page: int
    page_size: int
    where: tuple[ColumnElement[bool], ...]
    order_by: tuple[Column, ...]

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size


def parse_moment(value: str) -> datetime:
    """Parse a date (midnight UTC) or an RFC 3339 date-time with its zone, into UTC.

    Raises:
        ValueError: anything else (naive times and padding included), and a moment whose UTC
            falls outside years 1..9999 (``9999-12-31T23:59:59-00:01``).
    """
    if _DATE.fullmatch(value):
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    if not _DATE_TIME.fullmatch(value):
        raise ValueError(f"not a date or an RFC 3339 date-time: {value!r}")
    moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is out of range in UTC") from exc


def parse_list_query(
    params: Mapping[str, str], spec: ListSpec, viewer: uuid.UUID | None = None
) -> ListQuery:
    """Validate query parameters against ``spec``.

    Raises:
        ValidationFailed: bad page values, unknown filter or sort fields, bad dates; every
            problem is listed.
    """
    problems: list[FieldProblem] = []
    page = _int_param(params, "page", 1, 1, MAX_PAGE, problems)
    size = _int_param(params, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, problems)
    where = [*_filters(params, spec, viewer, problems), *_date_range(params, spec, problems)]
    search = params.get("search")
    if search and spec.search:
        where.append(or_(*(_contains(searchable(column), search) for column in spec.search)))
    order_by = _order_by(params.get("sort") or spec.default_sort, spec, problems)
    if problems:
        raise ValidationFailed("Invalid query parameters", problems)
    return ListQuery(page, size, tuple(where), (*order_by, spec.tiebreak))


def searchable(column: Column) -> ColumnElement[str]:
    """``sb_search_text(column)``: what a search matches (see ``search_form``).

    PostgreSQL has trigram indexes on exactly this expression for message bodies and group
    names and descriptions.
    """
    return func.sb_search_text(column, type_=Text)


def apply_list_query(statement: AnySelect, query: ListQuery) -> AnySelect:
    """Add the query's WHERE clauses (no ordering or window) to ``statement``."""
    return statement.where(and_(*query.where)) if query.where else statement


async def fetch_page(
    session: AsyncSession, statement: AnySelect, query: ListQuery
) -> tuple[list[Any], int]:
    """Run ``statement`` filtered, ordered and windowed; return ``(rows, total)``."""
    filtered = apply_list_query(statement, query)
    total = await session.scalar(select(func.count()).select_from(filtered.subquery()))
    windowed = filtered.order_by(*query.order_by).limit(query.page_size).offset(query.offset)
    rows = list((await session.execute(windowed)).all())
    return rows, int(total or 0)


def _int_param(
    params: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[FieldProblem],
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    bounds = f"{low}..{high}" if high else f">= {low}"
    # a bound has at most 10 digits; int() of thousands of digits raises (and costs)
    value = int(raw) if len(raw) <= MAX_INT_DIGITS and _DIGITS.fullmatch(raw) else low - 1
    if value < low or (high is not None and value > high):
        problems.append(FieldProblem(name, f"{name} must be an integer {bounds}", f"Use {bounds}"))
        return default
    return value


def _filters(
    params: Mapping[str, str],
    spec: ListSpec,
    viewer: uuid.UUID | None,
    problems: list[FieldProblem],
) -> list[ColumnElement[bool]]:
    clauses = []
    for key, value in params.items():
        if not (key.startswith("filter[") and key.endswith("]")):
            continue
        name = key[len("filter[") : -1]
        definition = spec.filters.get(name)
        if definition is None:
            allowed = ", ".join(sorted(spec.filters)) or "none"
            problems.append(FieldProblem(key, f"Unknown filter '{name}'", f"Allowed: {allowed}"))
            continue
        try:
            clauses.append(definition.build(value, viewer))
        except ValueError as exc:
            problems.append(FieldProblem(key, f"Invalid value: {exc}"))
    return clauses


def _date_range(
    params: Mapping[str, str], spec: ListSpec, problems: list[FieldProblem]
) -> list[ColumnElement[bool]]:
    clauses = []
    for name, before in (("created_after", False), ("created_before", True)):
        raw = params.get(name)
        if raw is None or spec.created is None:
            continue
        try:
            moment = parse_moment(raw)
        except ValueError:
            problems.append(
                FieldProblem(name, "Invalid date", "Use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
            )
            continue
        clauses.append(spec.created < moment if before else spec.created >= moment)
    return clauses


def _order_by(raw: str, spec: ListSpec, problems: list[FieldProblem]) -> list[Column]:
    order: list[Column] = []
    seen: set[str] = set()
    for part in raw.split(","):
        name = part.removeprefix("-")
        if name in seen:  # a field counts once, where it first appears (later ones order nothing)
            continue
        seen.add(name)
        column = spec.sorts.get(name)
        if column is None:
            allowed = ", ".join(sorted(spec.sorts))
            problems.append(
                FieldProblem("sort", f"Unknown sort field '{name}'", f"Allowed: {allowed}")
            )
            continue
        order.append(column.desc() if part.startswith("-") else column.asc())
    return order


SHORT_TERM = 3
"""Below three characters a trigram index cannot narrow a search down: such a term is found
with ``strpos`` over the rows the other conditions select (a group's messages), which
costs half what a trigram index scan does then."""


class strpos(GenericFunction[int]):
    """``strpos(text, part)``: PostgreSQL's; ``instr`` on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(strpos, "sqlite")
def _instr(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def _contains(text: ColumnElement[str], search: str) -> ColumnElement[bool]:
    """Whether ``text`` (in search form) holds the term ``search`` (made so by the database)."""
    term = escape_for_search(search)
    if len(search_form(term)) < SHORT_TERM:
        return strpos(text, func.sb_search_text(literal(term, Text), type_=Text)) > 0
    return text.like(_pattern(search), escape="\\")


def _pattern(search: str) -> ColumnElement[str]:
    """``%<term>%`` with the term in search form made by the database, as the text is.

    The term is cleaned and escaped as stored text was (in Python), LIKE-escaped, then
    passed through the same ``sb_search_text`` as the column: Python's lower() differs from
    PostgreSQL's (``ΟΔΟΣ``, ``İstanbul``), so a term lowered here never found its own text.
    """
    term = literal(_like_escape(escape_for_search(search)), Text)
    return literal("%", Text) + func.sb_search_text(term, type_=Text) + literal("%", Text)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
