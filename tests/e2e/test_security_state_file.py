"""Two gateways on one SQLite state file (issue 11, item 11): the second `paygate-mcp wrap` exits 1 at
start with a one-line reason naming the file and the process holding it; once that one stops (even by
kill -9), a new one starts."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.support import CLI, ECHO_COMMAND, running_gateway, start_gateway


def second_wrap(state: Path, port: str = "0") -> subprocess.CompletedProcess[str]:
    argv = [CLI, "wrap", "--port", port, "--server", ECHO_COMMAND, "--state-file", str(state)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_second_gateway_on_the_same_state_file_exits_1_with_the_reason(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with running_gateway("--server", ECHO_COMMAND, state_file=str(state)) as first:
        key = first.create_key(7)
        for port in ("0", str(first.port)):  # on its own port, or on the first one's: the state file is the reason
            refused = second_wrap(state, port)
            assert refused.returncode == 1, refused
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1, refused.stderr
            assert lines[0].startswith("error: state file ") and str(state) in lines[0]
            assert f"process {first.proc.pid}" in lines[0] and "redisUrl" in lines[0]
        assert first.balance(key) == 7  # the first one is untouched
    second = start_gateway("--server", ECHO_COMMAND, state_file=str(state))
    try:
        assert second.balance(key) == 7
    finally:
        assert second.stop(signal.SIGKILL) != 0  # killed: the kernel drops its lock
    with running_gateway("--server", ECHO_COMMAND, state_file=str(state)) as third:
        assert third.balance(key) == 7
