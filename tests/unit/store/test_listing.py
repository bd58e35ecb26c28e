"""List queries: pagination bounds, filters, sort, search and date range, compiled to SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.dialects.sqlite import dialect as sqlite

from server.errors import ValidationFailed
from server.store.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    FilterDef,
    ListQuery,
    ListSpec,
    apply_list_query,
    datetime_filter,
    fetch_page,
    parse_list_query,
    parse_moment,
    text_filter,
)
from server.store.models import StudyGroup

VIEWER = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def _owner_filter(value: str, viewer: uuid.UUID | None) -> ColumnElement[bool]:
    """filter[owner]=me means the viewer; anything else must be a UUID."""
    if value == "me":
        if viewer is None:
            raise ValueError("'me' needs a signed-in viewer")
        return StudyGroup.owner_id == viewer
    return StudyGroup.owner_id == uuid.UUID(value)


SPEC = ListSpec(
    sorts={
        "name": StudyGroup.name,
        "created_at": StudyGroup.created_at,
        "member_count": StudyGroup.member_count,
    },
    default_sort="-created_at",
    tiebreak=StudyGroup.id,
    filters={
        "visibility": text_filter(StudyGroup.visibility, "public or private"),
        "owner": FilterDef(_owner_filter, "a user id, or 'me'"),
        "updated_since": datetime_filter(StudyGroup.updated_at, before=False),
        "updated_before": datetime_filter(StudyGroup.updated_at, before=True),
    },
    search=(StudyGroup.name, StudyGroup.description),
    created=StudyGroup.created_at,
)
BARE_SPEC = ListSpec(sorts={"name": StudyGroup.name}, default_sort="name", tiebreak=StudyGroup.id)


def _sql(clause: Any) -> str:
    """Compile to SQL text (whitespace collapsed); mapped attributes via their column."""
    element = clause.__clause_element__() if hasattr(clause, "__clause_element__") else clause
    return " ".join(str(element).split())


def _params(clause: Any) -> dict[str, Any]:
    return dict(clause.compile().params)


def _problems(error: ValidationFailed) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = error.details["fields"]
    return problems


def test_defaults_are_first_page_of_twenty_newest_first() -> None:
    """No parameters: page 1, 20 per page, default sort then the tiebreak, no filters."""
    query = parse_list_query({}, SPEC)
    assert (query.page, query.page_size, query.offset) == (1, DEFAULT_PAGE_SIZE, 0)
    assert query.where == ()
    assert [_sql(column) for column in query.order_by] == [
        "study_groups.created_at DESC",
        "study_groups.id",
    ]


def test_page_and_size_set_the_window() -> None:
    """Page 3 of 50 skips 100 rows."""
    query = parse_list_query({"page": "3", "page_size": "50"}, SPEC)
    assert (query.page, query.page_size, query.offset) == (3, 50, 100)


def test_page_size_bounds_are_inclusive() -> None:
    """1 and 100 are both allowed page sizes."""
    assert parse_list_query({"page_size": "1"}, SPEC).page_size == 1
    assert parse_list_query({"page_size": str(MAX_PAGE_SIZE)}, SPEC).page_size == 100


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"page": "0"}, "page", "page must be an integer 1..1000000000"),
        ({"page": "-2"}, "page", "page must be an integer 1..1000000000"),
        ({"page": "abc"}, "page", "page must be an integer 1..1000000000"),
        ({"page_size": "0"}, "page_size", "page_size must be an integer 1..100"),
        ({"page_size": "101"}, "page_size", "page_size must be an integer 1..100"),
        ({"page_size": "abc"}, "page_size", "page_size must be an integer 1..100"),
        ({"page_size": ""}, "page_size", "page_size must be an integer 1..100"),
        ({"page_size": "2.5"}, "page_size", "page_size must be an integer 1..100"),
        ({"page": "9" * 5000}, "page", "page must be an integer 1..1000000000"),
        ({"page_size": "0" * 5000 + "1"}, "page_size", "page_size must be an integer 1..100"),
    ],
)
def test_bad_page_values_are_field_problems(
    params: dict[str, str], field: str, message: str
) -> None:
    """Out-of-range or non-numeric page values name the parameter and its bounds."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query(params, SPEC)
    assert caught.value.message == "Invalid query parameters"
    assert _problems(caught.value) == [
        {"field": field, "message": message, "suggestion": "Use " + message.split("integer ")[1]}
    ]


def test_every_problem_is_listed_at_once() -> None:
    """Page, size, filter, date and sort problems all come back together."""
    params = {
        "page": "0",
        "page_size": "101",
        "filter[colour]": "red",
        "created_after": "yesterday",
        "sort": "-popularity",
    }
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query(params, SPEC)
    assert [problem["field"] for problem in _problems(caught.value)] == [
        "page",
        "page_size",
        "filter[colour]",
        "created_after",
        "sort",
    ]


def test_unknown_filter_lists_the_allowed_ones() -> None:
    """filter[colour] is not declared; the allowed names are suggested, sorted."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"filter[colour]": "red"}, SPEC)
    assert _problems(caught.value) == [
        {
            "field": "filter[colour]",
            "message": "Unknown filter 'colour'",
            "suggestion": "Allowed: owner, updated_before, updated_since, visibility",
        }
    ]


def test_unknown_filter_on_a_spec_without_filters() -> None:
    """When nothing can be filtered, the suggestion says so."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"filter[name]": "x"}, BARE_SPEC)
    assert _problems(caught.value)[0]["suggestion"] == "Allowed: none"


def test_parameters_that_are_not_filters_are_ignored() -> None:
    """Other query parameters (and near-misses of the filter syntax) add no clauses."""
    query = parse_list_query({"utm_source": "x", "filter[": "y", "filterx]": "z"}, SPEC)
    assert query.where == ()


def test_text_filter_is_case_insensitive_exact_match() -> None:
    """filter[visibility]=Public compares column and value lower-cased by the database."""
    (clause,) = parse_list_query({"filter[visibility]": "Public"}, SPEC).where
    assert _sql(clause) == "lower(study_groups.visibility) = lower(:param_1)"
    assert _params(clause) == {"param_1": "Public"}


def test_filter_builder_receives_the_viewer() -> None:
    """filter[owner]=me resolves to the signed-in viewer's id."""
    (clause,) = parse_list_query({"filter[owner]": "me"}, SPEC, VIEWER).where
    assert _sql(clause) == "study_groups.owner_id = :owner_id_1"
    assert _params(clause) == {"owner_id_1": VIEWER}


@pytest.mark.parametrize(
    ("value", "viewer", "reason"),
    [
        ("me", None, "'me' needs a signed-in viewer"),
        ("not-a-uuid", VIEWER, "badly formed hexadecimal UUID string"),
    ],
)
def test_filter_value_error_becomes_a_field_problem(
    value: str, viewer: uuid.UUID | None, reason: str
) -> None:
    """A builder raising ValueError is reported against its parameter with the reason."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"filter[owner]": value}, SPEC, viewer)
    assert _problems(caught.value) == [
        {"field": "filter[owner]", "message": f"Invalid value: {reason}"}
    ]


def test_datetime_filters_compare_in_the_right_direction() -> None:
    """'since' is >= and 'before' is <, both with a UTC moment."""
    since, before = parse_list_query(
        {"filter[updated_since]": "2024-01-31", "filter[updated_before]": "2024-02-01T12:00:00Z"},
        SPEC,
    ).where
    assert _sql(since) == "study_groups.updated_at >= :updated_at_1"
    assert _params(since) == {"updated_at_1": datetime(2024, 1, 31, tzinfo=UTC)}
    assert _sql(before) == "study_groups.updated_at < :updated_at_1"
    assert _params(before) == {"updated_at_1": datetime(2024, 2, 1, 12, tzinfo=UTC)}


def test_datetime_filter_with_a_bad_date_is_a_field_problem() -> None:
    """An unparseable date in a datetime filter is reported on that filter."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"filter[updated_since]": "2024-13-45"}, SPEC)
    (problem,) = _problems(caught.value)
    assert problem["field"] == "filter[updated_since]"
    assert problem["message"].startswith("Invalid value: ")


def test_datetime_filter_builder_directly() -> None:
    """datetime_filter builds a clause from the raw value and ignores the viewer."""
    definition = datetime_filter(StudyGroup.created_at, before=True, description="before")
    assert definition.description == "before"
    clause = definition.build("2024-03-01", None)
    assert _sql(clause) == "study_groups.created_at < :created_at_1"
    assert _params(clause) == {"created_at_1": datetime(2024, 3, 1, tzinfo=UTC)}


def test_text_filter_builder_directly() -> None:
    """text_filter keeps its description and escapes the value as stored text is."""
    definition = text_filter(StudyGroup.subject, "exact subject")
    assert definition.description == "exact subject"
    assert _params(definition.build("M&TH", VIEWER)) == {"param_1": "M&amp;TH"}


def test_created_range_adds_both_bounds() -> None:
    """created_after is inclusive (>=), created_before exclusive (<)."""
    after, before = parse_list_query(
        {"created_after": "2024-01-01", "created_before": "2024-02-01"}, SPEC
    ).where
    assert _sql(after) == "study_groups.created_at >= :created_at_1"
    assert _sql(before) == "study_groups.created_at < :created_at_1"
    assert _params(after) == {"created_at_1": datetime(2024, 1, 1, tzinfo=UTC)}
    assert _params(before) == {"created_at_1": datetime(2024, 2, 1, tzinfo=UTC)}


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-02-30",
        "31/01/2024",
        "2024-01-31T25:00",
        "9999-12-31T23:59:59-00:01",  # valid RFC 3339, past year 9999 in UTC
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
    ],
)
def test_bad_created_dates_are_field_problems(value: str) -> None:
    """Invalid dates suggest the two accepted formats."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"created_before": value}, SPEC)
    assert _problems(caught.value) == [
        {
            "field": "created_before",
            "message": "Invalid date",
            "suggestion": "Use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
        }
    ]


def test_created_range_is_ignored_without_a_created_column() -> None:
    """A spec with no creation column silently ignores the range (even if malformed)."""
    assert parse_list_query({"created_after": "garbage"}, BARE_SPEC).where == ()


def test_search_matches_any_search_column_case_insensitively() -> None:
    """A search adds one OR of LIKEs on ``sb_search_text`` of the declared columns.

    The term goes through the same ``sb_search_text`` in the database, so both sides fold
    case alike.
    """
    (clause,) = parse_list_query({"search": "AlGebra"}, SPEC).where
    sql = _sql(clause)
    pattern = "(:param_{} || sb_search_text(:param_{}) || :param_{})"
    assert f"sb_search_text(study_groups.name) LIKE {pattern.format(1, 2, 3)}" in sql
    assert f"sb_search_text(study_groups.description) LIKE {pattern.format(4, 5, 6)}" in sql
    assert " OR " in sql
    assert "ESCAPE" in sql
    assert _params(clause)["param_2"] == "AlGebra" and _params(clause)["param_1"] == "%"


def test_search_escapes_like_wildcards() -> None:
    """%, _ and backslash in the term match literally."""
    (clause,) = parse_list_query({"search": "50%_off\\"}, SPEC).where
    assert _params(clause)["param_2"] == "50\\%\\_off\\\\"


def test_search_is_cleaned_like_stored_text_and_compared_as_typed() -> None:
    """The term is cleaned (NFC, control characters out) and escaped as stored text is."""
    (clause,) = parse_list_query({"search": "<B>&e\u0301\x00"}, SPEC).where
    assert _params(clause)["param_2"] == "&lt;B&gt;&amp;\u00e9"


def test_a_term_under_three_characters_is_found_with_strpos() -> None:
    """No trigram index narrows a short term: strpos (instr on SQLite), no LIKE."""
    (clause,) = parse_list_query({"search": "&X"}, SPEC).where
    sql = _sql(clause)
    assert "strpos(sb_search_text(study_groups.name), sb_search_text(:param_1)) > :strpos_1" in sql
    assert "LIKE" not in sql and _params(clause)["param_1"] == "&amp;X"
    assert "instr(sb_search_text(study_groups.name)" in str(clause.compile(dialect=sqlite()))


def test_empty_search_or_unsearchable_spec_adds_nothing() -> None:
    """An empty term, or a spec without search columns, adds no clause."""
    assert parse_list_query({"search": ""}, SPEC).where == ()
    assert parse_list_query({"search": "x"}, BARE_SPEC).where == ()


def test_sort_by_several_fields_in_both_directions() -> None:
    """'-member_count,name' is descending then ascending, then the tiebreak."""
    query = parse_list_query({"sort": "-member_count,name"}, SPEC)
    assert [_sql(column) for column in query.order_by] == [
        "study_groups.member_count DESC",
        "study_groups.name ASC",
        "study_groups.id",
    ]


def test_sort_fields_are_taken_as_written() -> None:
    """Spaces are not trimmed: the OpenAPI pattern allows none, and neither does the server."""
    with pytest.raises(ValidationFailed):
        parse_list_query({"sort": "-member_count, name"}, SPEC)


def test_empty_sort_uses_the_default() -> None:
    """sort= with nothing falls back to the spec's default."""
    query = parse_list_query({"sort": ""}, SPEC)
    assert _sql(query.order_by[0]) == "study_groups.created_at DESC"


def test_unknown_sort_lists_the_allowed_fields() -> None:
    """An unknown sort field is named, with the allowed ones sorted."""
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"sort": "name,-popularity"}, SPEC)
    assert _problems(caught.value) == [
        {
            "field": "sort",
            "message": "Unknown sort field 'popularity'",
            "suggestion": "Allowed: created_at, member_count, name",
        }
    ]


def test_a_sort_field_counts_once_where_it_first_appears() -> None:
    """5,000 repeats of a field are one ORDER BY term; repeated unknown fields, one problem."""
    query = parse_list_query({"sort": ",".join(["-name", "name"] * 2500)}, SPEC)
    assert [_sql(column) for column in query.order_by] == [
        "study_groups.name DESC",
        "study_groups.id",
    ]
    with pytest.raises(ValidationFailed) as caught:
        parse_list_query({"sort": ",".join(["bogus"] * 5000)}, SPEC)
    assert len(_problems(caught.value)) == 1


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31T10:15:00Z", datetime(2024, 1, 31, 10, 15, tzinfo=UTC)),
        ("2024-01-31t10:15:00z", datetime(2024, 1, 31, 10, 15, tzinfo=UTC)),
        ("2024-01-31T10:15:00+02:00", datetime(2024, 1, 31, 8, 15, tzinfo=UTC)),
        ("2024-01-31T10:15:00.5-01:00", datetime(2024, 1, 31, 11, 15, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_moment_dates_and_datetimes(text: str, moment: datetime) -> None:
    """A date is midnight UTC; Z and offsets end up in UTC."""
    parsed = parse_moment(text)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


def test_parse_moment_normalises_the_zone_to_utc() -> None:
    """An offset time comes back expressed in UTC, not merely equal to it."""
    parsed = parse_moment("2024-06-01T00:30:00+05:30")
    assert parsed.tzinfo is UTC
    assert (parsed.day, parsed.hour, parsed.minute) == (31, 19, 0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-02-30",
        "2024-01-31T99:00",
        "31.01.2024",
        " 2024-01-31 ",
        "2024-01-31T10:15:00",
        "2024-01-31T10",
        "2024-W05-3",
        "20240131",
    ],
)
def test_parse_moment_refuses_bad_text(text: str) -> None:
    """Anything else is ValueError: padding, naive times, and Python's other ISO forms."""
    with pytest.raises(ValueError):
        parse_moment(text)


def test_apply_list_query_adds_the_where_clauses() -> None:
    """Filters become a WHERE joined with AND; no ordering or window is added."""
    query = parse_list_query({"filter[visibility]": "public", "created_after": "2024-01-01"}, SPEC)
    statement = _sql(apply_list_query(select(StudyGroup.id), query))
    assert "WHERE lower(study_groups.visibility) = lower(:param_1) AND study_groups.created_at" in (
        statement
    )
    assert "ORDER BY" not in statement
    assert "LIMIT" not in statement


def test_apply_list_query_without_filters_leaves_the_statement() -> None:
    """No clauses, the statement is returned unchanged."""
    statement = select(StudyGroup.id)
    assert apply_list_query(statement, parse_list_query({}, SPEC)) is statement


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows


class _RecordingSession:
    """Stands in for AsyncSession: records statements, answers canned results."""

    def __init__(self, total: int | None, rows: list[Any]) -> None:
        self.statements: list[Select[Any]] = []
        self._total = total
        self._rows = rows

    async def scalar(self, statement: Select[Any]) -> int | None:
        self.statements.append(statement)
        return self._total

    async def execute(self, statement: Select[Any]) -> _Rows:
        self.statements.append(statement)
        return _Rows(self._rows)


async def test_fetch_page_counts_then_fetches_the_ordered_window() -> None:
    """The count query is filtered; the page query is also ordered, limited and offset."""
    session = _RecordingSession(total=42, rows=[("a",), ("b",)])
    query = parse_list_query({"page": "2", "page_size": "5", "filter[visibility]": "x"}, SPEC)
    rows, total = await fetch_page(session, select(StudyGroup.id), query)  # type: ignore[arg-type]
    assert (rows, total) == ([("a",), ("b",)], 42)
    count_sql, page_sql = (_sql(statement) for statement in session.statements)
    assert count_sql.startswith("SELECT count(*) AS count_1 FROM (SELECT study_groups.id")
    assert "lower(study_groups.visibility)" in count_sql
    assert "ORDER BY study_groups.created_at DESC, study_groups.id" in page_sql
    assert "LIMIT :param_2 OFFSET :param_3" in page_sql
    assert session.statements[1].compile().params["param_2"] == 5
    assert session.statements[1].compile().params["param_3"] == 5


async def test_fetch_page_with_no_count_is_zero() -> None:
    """A NULL count (nothing matched) is reported as 0."""
    session = _RecordingSession(total=None, rows=[])
    rows, total = await fetch_page(session, select(StudyGroup.id), ListQuery(1, 20, (), ()))  # type: ignore[arg-type]
    assert (rows, total) == ([], 0)
