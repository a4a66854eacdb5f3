"""Schemathesis fuzzes the 64 analytics reports' query parameters (with the admin key): no 5xx, ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.fuzz_support import fuzz, generated
from tests.inprocess import InProcessGateway


@pytest.mark.e2e  # runs the schemathesis CLI as a process (against the in-process gateway)
def test_no_generated_report_query_makes_the_server_fail(gw: InProcessGateway, tmp_path: Path) -> None:
    # The 64 reports take the same few query parameters (engine.ReportParams and its kin): 5 examples each
    assert generated(fuzz(gw, tmp_path, 5, "--include-tag", "analytics")) >= 64
