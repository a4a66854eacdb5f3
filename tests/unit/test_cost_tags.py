"""Cost tags, pure (docs/money-rules.md#cost-tags): the header's checks, reports and CSV."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.core.cost_tags import NONE, BadTags, Limits, Row, parse, report, to_csv


def test_no_header_is_no_tags_and_a_good_one_is_read() -> None:
    assert parse(None, Limits()) == {}
    assert parse(b'{"team": "a", "env": "prod"}', Limits()) == {"team": "a", "env": "prod"}


@pytest.mark.parametrize(
    ("raw", "limits", "why"),
    [
        (b"{", Limits(), "JSON object"),
        (b'"x"', Limits(), "JSON object"),
        (b'{"a": "' + b"x" * 2000 + b'"}', Limits(), "bytes"),
        (b'{"a": "1", "b": "2"}', Limits(max_tags=1), "at most 1"),
        (b'{"a": "1"}', Limits(allowed=frozenset({"b"})), "not allowed"),
        (b'{"a": "line\\nbreak"}', Limits(), "printable"),
        (b'{"a": null}', Limits(), "printable"),
        (b'{"": "x"}', Limits(), "tag name"),
    ],
)
def test_bad_headers_say_why(raw: bytes, limits: Limits, why: str) -> None:
    with pytest.raises(BadTags, match=why):
        parse(raw, limits)


def _row(tags: dict[str, str], calls: int, credits: int) -> Row:
    return Row("2026-12-08", "pg_…", "echo", tags, calls, credits)


def test_reports_group_and_cross_tabulate() -> None:
    rows = [_row({"team": "a", "env": "p"}, 2, 5), _row({"team": "b"}, 1, 9), _row({"team": "a", "env": "d"}, 1, 1)]
    one = report(rows, ["team"])
    assert one["rows"] == [{"team": "b", "calls": 1, "credits": 9}, {"team": "a", "calls": 3, "credits": 6}]
    assert one["total"] == {"calls": 4, "credits": 15}
    cross = report(rows, ["team", "env"])["crossTab"]
    assert cross["rows"] == ["a", "b"] and cross["columns"] == [NONE, "d", "p"]
    assert cross["credits"] == [[0, 1, 5], [9, 0, 0]]


def test_csv_quotes_what_a_spreadsheet_would_run() -> None:
    text = to_csv(report([_row({"team": "=cmd()"}, 1, 2)], ["team"]))
    assert text.splitlines() == ["team,calls,credits", "'=cmd(),1,2"]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.integers(0, 50)), max_size=30))
def test_a_report_never_loses_or_invents_credits(parts: list[tuple[str, int, int]]) -> None:
    rows = [_row({"team": t} if t != "c" else {}, calls, credits) for t, calls, credits in parts]
    result = report(rows, ["team"])
    assert sum(r["credits"] for r in result["rows"]) == result["total"]["credits"] == sum(p[2] for p in parts)
    assert sum(r["calls"] for r in result["rows"]) == sum(p[1] for p in parts)
