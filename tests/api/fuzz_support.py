"""Schemathesis over the in-process gateway's /openapi.json (with the admin key): the fuzz tests' runner."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

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
