"""Issue 11 item 10: CSV injection. Every CSV export goes through one helper (core/csv_cells.py): no
cell a spreadsheet would run as a formula, and no line break inside a cell that could start a row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.audit.service import AUDIT_COLUMNS, to_csv
from paygate.billing.usage import USAGE_COLUMNS, usage_csv
from paygate.core.csv_cells import FORMULA_STARTS, csv_cell, csv_text
from paygate.keys.import_export import CSV_COLUMNS, export_csv
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND

ATTACK = "Acme\r=cmd|' /C calc'!A0"
NASTY = [ATTACK, "\t=1+1", "\r=2+2", "  @SUM(A1)", "-3", "+4", "line\nbreak", "=x\r\n=y", "\u3000=z"]
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40) | st.sampled_from(NASTY)


def parsed(document: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(document, newline="")))


def assert_safe(rows: list[list[str]], width: int) -> None:
    for row in rows:
        assert len(row) == width, row
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), cell
            assert not cell.lstrip().startswith(FORMULA_STARTS), cell
            assert "\r" not in cell and "\n" not in cell, cell


def test_the_cell_helper() -> None:
    assert csv_cell(ATTACK) == "Acme =cmd|' /C calc'!A0"
    assert csv_cell("\t=1") == "'\t=1" and csv_cell("\r=1") == "' =1" and csv_cell(" =1") == "' =1"
    assert csv_cell("plain") == "plain" and csv_cell(-5) == -5 and csv_cell(None) is None and csv_cell("") == ""


@given(st.lists(st.lists(texts, min_size=3, max_size=3), max_size=8))
def test_any_text_parses_back_to_the_same_rows_with_no_formula(rows: list[list[str]]) -> None:
    out = parsed(csv_text(("a", "b", "c"), rows))
    assert len(out) == len(rows) + 1
    assert_safe(out, 3)


@given(texts, texts)
def test_every_export_writer_is_safe_for_any_name(name: str, tool: str) -> None:
    key_entry = dict.fromkeys(CSV_COLUMNS, "") | {"name": name, "alias": tool, "namespace": "n", "credits": 5}
    keys = parsed(export_csv([key_entry, key_entry]))
    assert len(keys) == 3
    assert_safe(keys, len(CSV_COLUMNS))
    audit_row = {"id": 1, "timestamp": "t", "type": "key.created", "actor": name, "message": tool, "metadata": {}}
    audit = parsed(to_csv([audit_row], AUDIT_COLUMNS))
    assert len(audit) == 2
    assert_safe(audit, len(AUDIT_COLUMNS))
    usage_row = dict.fromkeys(USAGE_COLUMNS, None) | {"keyName": name, "tool": tool, "creditsCharged": 1}
    usage = parsed(usage_csv([usage_row]))
    assert len(usage) == 2
    assert_safe(usage, len(USAGE_COLUMNS))


@pytest.fixture(scope="module")
def gw() -> Iterator[InProcessGateway]:
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gateway:
        yield gateway


@pytest.mark.parametrize(
    "path",
    [
        "/keys/export?format=csv",
        "/audit/export?format=csv",
        "/admin/compliance/export?format=csv",
        "/usage?format=csv",
        "/requests/export?format=csv",
    ],
)
def test_hostile_key_names_cannot_inject_through_any_csv_export(gw: InProcessGateway, path: str) -> None:
    for name in NASTY:
        raw = gw.create_key(10, name=name)
        gw.call_tool("echo", {"text": "hi"}, raw)
    resp = gw.client.get(path, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "\r" not in resp.text.replace("\r\n", "\n"), "a bare CR would start a new row in a spreadsheet"
    rows = parsed(resp.text)
    assert_safe(rows, len(rows[0]))
    if not path.startswith("/requests"):  # the request log names no key
        names = "\n".join(",".join(r) for r in rows)
        assert "Acme =cmd|' /C calc'!A0" in names  # the hostile name is in the export, as inert text
