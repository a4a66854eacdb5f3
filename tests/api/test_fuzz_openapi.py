"""Schemathesis fuzzes every operation in /openapi.json (with the admin key): no 5xx, ever."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.inprocess import InProcessGateway
from tests.support import VENV_BIN


def fuzz(gw: InProcessGateway, tmp_path: Path, examples: int, *only: str) -> str:
    """Schemathesis over the operations `only` selects (all of them when empty); its output."""
    result = subprocess.run(
        [
            str(VENV_BIN / "schemathesis"),
            "run",
            f"{gw.url}/openapi.json",
            "-H",
            f"X-Admin-Key: {gw.admin_key}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(examples),
            "--seed",
            "1",
            "--request-timeout",
            "30",
            # A stream that stays open by design (tests/api/test_admin_events.py covers it) is no request/response.
            "--exclude-path",
            "/admin/events",
            *only,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # its report files stay out of the tree
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert gw.client.get("/health").status_code == 200
    return result.stdout


def generated(output: str) -> int:
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None and counts[1] == counts[2], output[-2000:]
    return int(counts[1])


@pytest.mark.e2e  # runs the schemathesis CLI as a process (against the in-process gateway)
def test_no_generated_request_makes_the_server_fail(gw: InProcessGateway, tmp_path: Path) -> None:
    # 20 examples per operation (~130 of them): ~75 s on the 2-core machine, the suite's longest single test
    assert generated(fuzz(gw, tmp_path, 20, "--exclude-tag", "analytics")) > 100


@pytest.mark.e2e
def test_no_generated_report_query_makes_the_server_fail(gw: InProcessGateway, tmp_path: Path) -> None:
    # The 64 reports take the same few query parameters (engine.ReportParams and its kin): 5 examples each
    assert generated(fuzz(gw, tmp_path, 5, "--include-tag", "analytics")) >= 64
