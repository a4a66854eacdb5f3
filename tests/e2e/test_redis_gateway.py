"""One gateway on Redis through the real CLI: what it says at start about Redis's durability, how it refuses
to start without Redis, and what /info, /health, /ready and the ready line show."""

from __future__ import annotations

import subprocess

from tests.redis_server import running_redis
from tests.support import CLI, ECHO_COMMAND, free_port, start_gateway

ADMIN = "redis-gateway-admin-key-0123456789"


def test_without_an_append_only_file_the_gateway_warns_that_the_ledger_would_not_survive() -> None:
    with running_redis(appendonly=False) as server:
        gw = start_gateway("--server", ECHO_COMMAND, "--redis-url", server.url, admin_key=ADMIN, state_file=None)
        try:
            assert "appendonly is no" in gw.stderr()
            assert gw.ready["redis"] == server.url and gw.ready["stateFile"] is None
            assert gw.client.get("/info").json()["features"]["redis"] is True
            health = gw.client.get("/health").json()
            assert health["redis"] == {"connected": True, "pubsub": True}
            ready = gw.client.get("/ready")
            assert ready.status_code == 200 and ready.json()["checks"]["redis"] is True
        finally:
            gw.stop()


def test_with_appendfsync_always_there_is_nothing_to_warn_about() -> None:
    with running_redis(appendonly=True, appendfsync="always") as server:
        gw = start_gateway("--server", ECHO_COMMAND, "--redis-url", server.url, admin_key=ADMIN, state_file=None)
        try:
            key = gw.create_key(5)
            assert gw.balance(key) == 5
            assert "redis:" not in gw.stderr()
        finally:
            gw.stop()


def test_redis_unreachable_at_start_is_one_error_line_and_exit_1() -> None:
    port = free_port()  # nothing listens there
    done = subprocess.run(
        [CLI, "wrap", "--server", ECHO_COMMAND, "--port", "0", "--redis-url", f"redis://127.0.0.1:{port}/0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "error: redis unreachable" in done.stderr and "Traceback" not in done.stderr
