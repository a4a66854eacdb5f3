"""Schemathesis fuzzes every operation in /openapi.json (with the admin key): no 5xx, ever. The reports are
fuzzed in test_fuzz_reports.py: a module of their own runs beside this one on another worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.fuzz_support import fuzz, generated
from tests.inprocess import InProcessGateway


@pytest.mark.e2e  # runs the schemathesis CLI as a process (against the in-process gateway)
def test_no_generated_request_makes_the_server_fail(gw: InProcessGateway, tmp_path: Path) -> None:
    # 20 examples per operation (~130 of them): ~75 s on the 2-core machine, the suite's longest single test
    assert generated(fuzz(gw, tmp_path, 20, "--exclude-tag", "analytics")) > 100
