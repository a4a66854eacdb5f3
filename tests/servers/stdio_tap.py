"""Run a stdio MCP server and append every line written to its stdin to a record file.

Usage: stdio_tap.py RECORD COMMAND [ARGS...]

For tests that must see what the gateway sends a third-party server (e.g. the id of a
`notifications/cancelled`): the server's stdout and stderr pass straight through, its stdin
through us. SIGTERM stops the server too; when the gateway closes our stdin, the server's closes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType


def main() -> int:
    record, *argv = sys.argv[1:]
    server = subprocess.Popen(argv, stdin=subprocess.PIPE)
    assert server.stdin is not None

    def stop(signum: int, frame: FrameType | None) -> None:
        server.terminate()
        raise SystemExit(server.wait())

    signal.signal(signal.SIGTERM, stop)
    with open(record, "ab", buffering=0) as log:
        for line in sys.stdin.buffer:
            log.write(line)
            try:
                server.stdin.write(line)
                server.stdin.flush()
            except BrokenPipeError:
                break
    server.stdin.close()
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
