"""CSV cells a spreadsheet cannot run: the one helper every CSV export of the gateway uses.

CSV injection: a spreadsheet runs a cell starting with `=`, `+`, `-` or `@` as a formula, and a tab
or CR at its start (or spaces before one of those) does not stop it. Key names, actors, tool names and
event data carry text an admin, a client or a backend chose, so every text cell goes through
`csv_cell`:

- a line break inside a cell (CR, LF, CRLF) becomes a space, so every record is exactly one line for
  any reader (Python's csv module does not even quote a bare CR: it would start a new row with
  whatever follows it). The JSON exports keep such text exactly.
- a cell whose first character, or first after leading whitespace, is `= + - @` (or that starts with a
  tab or CR) gets a leading `'`, which spreadsheets read as "this is text".

Numbers, booleans and None pass unchanged (a negative number is data, not a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " "})


def csv_cell(value: Any) -> Any:
    """`value` as a cell no spreadsheet runs and no reader splits (see the module docstring)."""
    if not isinstance(value, str) or not value:
        return value
    risky = value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS)
    if "\r" in value or "\n" in value:
        value = value.translate(_LINE_BREAKS)
    return "'" + value if risky else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], lineterminator: str = "\n") -> str:
    """A CSV document: the header, then each row with every cell through `csv_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()
