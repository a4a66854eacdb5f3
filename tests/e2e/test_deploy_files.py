"""The Dockerfile and the systemd unit checked by the real tools (hadolint; systemd-analyze), and the
image's runtime contract run without a container runtime: the gateway started the way the image starts it
(its ENV, its ENTRYPOINT) and the image's HEALTHCHECK command run as Docker would run it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import CLI, ECHO_COMMAND, VENV_BIN, running_gateway

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "paygate-mcp.service"


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found is None:
        pytest.fail(f"{name} is not installed (hadolint: the test extras; systemd-analyze: the systemd package)")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run([_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _unit_here(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this checkout's CLI (verify checks the program exists)."""
    unit = tmp_path / "paygate-mcp.service"
    unit.write_text((text or UNIT.read_text()).replace("/opt/paygate/bin/paygate-mcp", CLI))
    return unit


def test_systemd_accepts_the_unit_with_no_warning(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    done = subprocess.run([analyze, "verify", "--man=no", str(_unit_here(tmp_path))], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    typo = UNIT.read_text().replace("ProtectHome=yes", "ProtectHomes=yes")  # the check can fail
    bad = subprocess.run(
        [analyze, "verify", "--man=no", str(_unit_here(tmp_path, typo))], capture_output=True, text=True
    )
    assert "Unknown key" in bad.stderr


def test_the_unit_is_sandboxed(tmp_path: Path) -> None:
    done = subprocess.run(
        [_tool("systemd-analyze"), "security", "--offline=yes", str(_unit_here(tmp_path))],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0  # systemd's "OK" band; an unsandboxed service scores 9.6


def _dockerfile_runtime() -> tuple[dict[str, str], list[str], list[str]]:
    """The final stage's ENV, ENTRYPOINT and HEALTHCHECK CMD, as Docker would read them."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M).group(1))  # type: ignore[union-attr]
    health = json.loads(re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", final, re.M).group(1))  # type: ignore[union-attr]
    return env, entrypoint, health


def test_the_images_healthcheck_follows_ready(tmp_path: Path) -> None:
    env, entrypoint, health = _dockerfile_runtime()
    assert entrypoint == ["paygate-mcp"] and env["PAYGATE_STATE_FILE"].startswith("/data/")
    image_env = {k: v for k, v in env.items() if k != "PATH"}
    # As in the image, but on loopback (tests listen on 127.0.0.1 only) and in a scratch directory.
    image_env |= {"PAYGATE_HOST": "127.0.0.1", "PAYGATE_STATE_FILE": str(tmp_path / "paygate.db")}
    probe = [shutil.which("python3") or "python3", *health[1:]]
    with running_gateway("--server", ECHO_COMMAND, env=image_env, state_file=None) as gw:
        ok = subprocess.run(probe, env={**os.environ, "PAYGATE_PORT": str(gw.port)}, timeout=30)
        assert ok.returncode == 0
        drained = gw.client.post("/maintenance", json={"enabled": True}, headers=gw.admin())
        assert drained.status_code == 200
        down = subprocess.run(probe, env={**os.environ, "PAYGATE_PORT": str(gw.port)}, capture_output=True, timeout=30)
        assert down.returncode != 0  # /ready is 503 in maintenance: Docker counts the container unhealthy
    assert (tmp_path / "paygate.db").exists()  # the image's state file setting was honoured
