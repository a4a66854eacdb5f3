"""The wrapped stdio server does not inherit the gateway's own PAYGATE_* settings (secrets among them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paygate.mcp.backends.stdio import StdioBackend, child_environment
from tests.support import ECHO_SERVER, PYTHON

pytestmark = pytest.mark.e2e


def test_the_child_environment_drops_every_paygate_setting_and_keeps_the_rest() -> None:
    env = {
        "PAYGATE_ADMIN_KEY": "admin_secret",
        "PAYGATE_WEBHOOK_SECRET": "whsec",
        "PATH": "/bin",
        "HOME": "/h",
        "MY_PAYGATE_NOTE": "kept",
    }
    assert child_environment(env) == {"PATH": "/bin", "HOME": "/h", "MY_PAYGATE_NOTE": "kept"}


async def test_a_real_stdio_server_sees_no_paygate_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = tmp_path / "env.txt"
    monkeypatch.setenv("PAYGATE_ADMIN_KEY", "admin_secret_value")
    monkeypatch.setenv("PAYGATE_STRIPE_SECRET", "sk_test_value")
    monkeypatch.setenv("ENV_DUMP", str(dump))
    # the shell writes the environment it was given, then becomes the real echo server
    backend = StdioBackend("sh", ["-c", f'env > "$ENV_DUMP"; exec {PYTHON} {ECHO_SERVER}'])
    await backend.start()
    try:
        assert backend.ready and any(t["name"] == "echo" for t in backend.tools)
    finally:
        await backend.stop()
    seen = dump.read_text()
    assert f"ENV_DUMP={dump}" in seen  # the dump is the child's environment
    assert "admin_secret_value" not in seen and "sk_test_value" not in seen
    assert "PAYGATE_" not in seen
