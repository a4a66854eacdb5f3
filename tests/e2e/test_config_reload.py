"""Hot reload through the real CLI (docs/reload.md): `paygate-mcp wrap --config F` in front of the echo
MCP server over stdio; F's price changed, then SIGHUP: the next call is charged the new price; a broken F
and SIGHUP: logged, nothing changed; POST /config/reload does the same over HTTP."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.support import ECHO_SERVER, PYTHON, Gateway, running_gateway, wait_until


def charged(gw: Gateway, key: str) -> int:
    before = gw.balance(key)
    assert "result" in gw.call_tool("echo", {"text": "x"}, key)
    return before - gw.balance(key)


def test_sighup_and_post_reload_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "paygate.json"
    config = {"serverCommand": PYTHON, "serverArgs": [ECHO_SERVER], "defaultCreditsPerCall": 2}
    path.write_text(json.dumps(config))
    with running_gateway("--config", str(path)) as gw:
        key = gw.create_key(1000)
        assert charged(gw, key) == 2
        path.write_text(json.dumps({**config, "defaultCreditsPerCall": 5}))
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: bool(gw.events("config.reloaded")), 20, "the SIGHUP reload")
        assert charged(gw, key) == 5
        reloaded = gw.events("config.reloaded")[0]
        assert reloaded["actor"] == "system" and reloaded["data"]["source"] == "sighup"
        assert reloaded["data"]["changed"] == ["defaultCreditsPerCall"]
        assert "config reload (sighup): Config reloaded: 1 field updated" in gw.stderr()

        path.write_text('{"defaultCreditsPerCall": 7,')  # broken: the log says why, nothing changes
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: bool(gw.events("config.reload_failed")), 20, "the refused SIGHUP reload")
        assert "config reload (sighup) refused, nothing changed" in gw.stderr() and "not valid JSON" in gw.stderr()
        assert gw.proc.poll() is None and charged(gw, key) == 5

        path.write_text(json.dumps({**config, "defaultCreditsPerCall": 3, "port": 1}))
        resp = gw.client.post("/config/reload", headers=gw.admin())
        assert resp.status_code == 200, resp.text
        assert resp.json()["changed"] == ["defaultCreditsPerCall"] and resp.json()["skipped"] == ["port"]
        assert charged(gw, key) == 3
        assert gw.stop() == 0  # the SIGHUP handling leaves a graceful stop as it was
