"""A plugin as a user installs it: examples/plugins/paygate-plugin-example installed with pip (into a
directory on PYTHONPATH), named by its entry point (`--plugin example`, options in the config file),
in front of the real echo server through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import CLI, ECHO_COMMAND, ROOT, Gateway, running_gateway, wait_until, write_config

EXAMPLE = ROOT / "examples" / "plugins" / "paygate-plugin-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name  # a copy: the build leaves files where it runs
    shutil.copytree(EXAMPLE, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "paygate_plugin_example").is_dir()
    return target


@pytest.fixture(scope="module")
def gw(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(
        tmp_path_factory.mktemp("cfg"),
        {"plugins": [{"module": "example", "options": {"tool": "echo", "surcharge": 4}}]},
    )
    env = {"PYTHONPATH": str(installed)}
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config, env=env) as g:
        yield g


def test_the_installed_plugin_loads_by_its_entry_point_name_and_prices_its_tool(gw: Gateway) -> None:
    listed = gw.client.get("/plugins", headers=gw.admin()).json()
    assert listed["count"] == 1
    plugin = listed["plugins"][0]
    assert (plugin["name"], plugin["version"], plugin["source"]) == ("example", "1.0.0", "example")
    assert plugin["hooks"] == ["transformPrice", "afterToolCall", "onRequest"]
    key = gw.create_key(20)
    assert gw.call_tool("echo", {"text": "hi"}, key)["result"]["content"][0]["text"] == "hi"
    assert gw.balance(key) == 20 - (1 + 4)  # the default price plus the configured surcharge
    assert "result" in gw.call_tool("add", {"a": 1, "b": 1}, key)
    assert gw.balance(key) == 14  # another tool: its own price
    assert gw.client.get("/plugins/example/health").json() == {"ok": True}  # public
    assert gw.client.get("/plugins/example/stats").status_code == 401
    stats = gw.client.get("/plugins/example/stats", headers=gw.admin()).json()
    assert stats == {"calls": {"echo": 1, "add": 1}, "tool": "echo", "surcharge": 4}
    wait_until(lambda: "example plugin: echo by pg_" in gw.stderr(), 10, "the plugin's log line")
    assert "paygate_plugins_total 1.0" in gw.client.get("/metrics").text


def test_an_unknown_plugin_name_stops_the_start_with_the_reason(installed: Path) -> None:
    proc = subprocess.run(
        [CLI, "wrap", "--port", "0", "--state-file", ":memory:", "--server", ECHO_COMMAND, "--plugin", "exampel"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )
    assert proc.returncode == 1
    assert "plugin 'exampel': no installed plugin has this name" in proc.stderr
