"""The pure parts of dynamic discovery (mcp/discovery.py): paging and keyword search."""

from __future__ import annotations

from typing import Any

import pytest

from paygate.mcp.discovery import META_TOOLS, BadArguments, limit_of, page, search

TOOLS = [{"name": f"t{i}", "description": f"tool number {i}"} for i in range(7)]


def names(found: dict[str, Any]) -> list[str]:
    return [t["name"] for t in found["tools"]]


def test_pages_cover_every_tool_once_in_order() -> None:
    first = page(TOOLS, None, 3)
    second = page(TOOLS, first["nextCursor"], 3)
    last = page(TOOLS, second["nextCursor"], 3)
    assert names(first) + names(second) + names(last) == [t["name"] for t in TOOLS]
    assert "nextCursor" not in last and first["total"] == 7


def test_a_page_that_ends_exactly_at_the_end_has_no_next_cursor() -> None:
    assert "nextCursor" not in page(TOOLS, "4", 3) and names(page(TOOLS, "4", 3)) == ["t4", "t5", "t6"]


def test_a_cursor_past_the_end_is_an_empty_page() -> None:
    assert page(TOOLS, "70", 3) == {"tools": [], "total": 7}


@pytest.mark.parametrize("cursor", ["-1", "x", "", 3, "1" * 12])
def test_a_cursor_we_did_not_hand_out_is_refused(cursor: Any) -> None:
    with pytest.raises(BadArguments):
        page(TOOLS, cursor, 3)


def test_search_needs_every_word_case_insensitively_and_ranks_name_matches_first() -> None:
    tools = [
        {"name": "write_file", "description": "Write a file"},
        {"name": "read_text", "description": "Read a text file"},
        {"name": "read_file", "description": "Read a file's bytes"},
    ]
    assert names(search(tools, "READ file", 10)) == ["read_file", "read_text"]
    assert search(tools, "read file", 1) == {"tools": [tools[2]], "total": 2}
    assert search(tools, "delete", 10) == {"tools": [], "total": 0}


def test_search_tolerates_tools_without_a_description() -> None:
    assert names(search([{"name": "bare"}], "bare", 5)) == ["bare"]


@pytest.mark.parametrize(("arguments", "expected"), [({}, 20), ({"limit": 1}, 1), ({"limit": 100}, 100)])
def test_limit_defaults_to_twenty_and_goes_up_to_a_hundred(arguments: dict[str, Any], expected: int) -> None:
    assert limit_of(arguments, "t") == expected


@pytest.mark.parametrize("limit", [0, 101, True, "5", 2.5])
def test_a_limit_out_of_range_or_not_an_integer_is_refused(limit: Any) -> None:
    with pytest.raises(BadArguments):
        limit_of({"limit": limit}, "t")


def test_every_meta_tool_schema_is_a_closed_object_with_described_properties() -> None:
    for tool in META_TOOLS:
        schema = tool["inputSchema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert all(p.get("description") for p in schema["properties"].values())
        assert set(schema.get("required", [])) <= set(schema["properties"])
