"""Two gateways on one SQLite state file (issue 11, item 11): the second `paygate-mcp wrap` exits 1 at
start with a one-line reason naming the file and the process holding it; once that one stops, a new one
starts. (After a kill -9 the kernel drops the lock too: tests/e2e/test_persistence.py restarts on the state
file of a killed gateway.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import CLI, ECHO_COMMAND, running_gateway


def second_wrap(state: Path, port: str = "0") -> subprocess.CompletedProcess[str]:
    argv = [CLI, "wrap", "--port", port, "--server", ECHO_COMMAND, "--state-file", str(state)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_second_gateway_on_the_same_state_file_exits_1_with_the_reason(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with running_gateway("--server", ECHO_COMMAND, state_file=str(state)) as first:
        key = first.create_key(7)
        # On the first one's port: the state file, checked before the port is bound, is the reason given.
        refused = second_wrap(state, str(first.port))
        assert refused.returncode == 1, refused
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith("error: state file ") and str(state) in lines[0]
        assert f"process {first.proc.pid}" in lines[0] and "--redis-url" in lines[0]
        assert first.balance(key) == 7  # the first one is untouched
    with running_gateway("--server", ECHO_COMMAND, state_file=str(state)) as second:
        assert second.balance(key) == 7
