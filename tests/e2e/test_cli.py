"""The CLI's other commands and its failure modes: version, validate, --dry-run, bad input, drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import CLI, ECHO_COMMAND, ECHO_SERVER, PYTHON, start_gateway

pytestmark = pytest.mark.e2e


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_version_text_and_json() -> None:
    text = run("version")
    as_json = run("version", "--json")
    assert text.returncode == 0 and as_json.returncode == 0
    assert json.loads(as_json.stdout)["version"] == text.stdout.strip()


def test_validate_accepts_a_good_config(tmp_path: Path) -> None:
    result = run("validate", "--config", write(tmp_path, {"serverCommand": "node", "serverArgs": ["s.js"]}), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["valid"] is True


def test_validate_reports_errors_with_field_paths(tmp_path: Path) -> None:
    bad = {"serverCommand": "node", "port": 99999, "toolPricing": {"search": {"creditsPerCall": -2}}}
    result = run("validate", "--config", write(tmp_path, bad), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    fields = {d["field"] for d in report["diagnostics"] if d["level"] == "error"}
    assert {"port", "toolPricing.search.creditsPerCall"} <= fields
    assert report["errors"] == len(fields)
    text = run("validate", "--config", write(tmp_path, bad))
    assert text.returncode == 1 and "ERROR [port]" in text.stdout


def test_validate_warns_about_shadow_mode_and_unknown_keys(tmp_path: Path) -> None:
    cfg = {"serverCommand": "node", "shadowMode": True, "mystery": 1, "redisUrl": "redis://h.example:6379"}
    report = json.loads(run("validate", "--config", write(tmp_path, cfg), "--json").stdout)
    warned = {d["field"] for d in report["diagnostics"] if d["level"] == "warning"}
    assert {"shadowMode", "mystery"} <= warned and report["valid"] is True
    assert "redisUrl" not in warned  # enforced: the Redis store (docs/redis.md)


def test_validate_checks_key_policy_settings(tmp_path: Path) -> None:
    bad = {"serverCommand": "node", "trustedProxies": ["10.0.0.0/8", "nope"], "globalQuota": {"dailyCallLimit": -1}}
    report = json.loads(run("validate", "--config", write(tmp_path, bad), "--json").stdout)
    errors = {d["field"] for d in report["diagnostics"] if d["level"] == "error"}
    assert "trustedProxies" in errors and "globalQuota.dailyCallLimit" in errors
    lonely = {"serverCommand": "node", "countryHeader": "X-Country", "globalQuota": {"dailyCallLimit": 5}}
    report = json.loads(run("validate", "--config", write(tmp_path, lonely), "--json").stdout)
    assert report["valid"] is True
    assert [d["field"] for d in report["diagnostics"] if d["level"] == "warning"] == ["countryHeader"]


def test_validate_errors_without_a_backend_and_on_unreadable_files(tmp_path: Path) -> None:
    assert run("validate", "--config", write(tmp_path, {"port": 1})).returncode == 1
    (tmp_path / "broken.json").write_text("{nope")
    broken = run("validate", "--config", str(tmp_path / "broken.json"), "--json")
    assert broken.returncode == 1 and "not valid JSON" in broken.stdout


def test_dry_run_prints_the_pricing_table_and_exits(tmp_path: Path) -> None:
    as_json = run("wrap", "--server", ECHO_COMMAND, "--dry-run", "--json")
    tools = {t["name"]: t for t in json.loads(as_json.stdout)["tools"]}
    assert tools["echo"]["creditsPerCall"] == 1 and {"echo", "add", "slow"} <= set(tools)
    result = run("wrap", "--server", ECHO_COMMAND, "--tool-price", "add:7", "--dry-run", "--state-file", ":memory:")
    assert result.returncode == 0, result.stderr
    assert f"Discovered {len(tools)} tool(s)" in result.stdout
    add_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("add "))
    assert " 7 " in add_line and "60/min" in add_line


@pytest.mark.parametrize(
    "args",
    [
        ["wrap"],
        ["wrap", "--server", "x", "--remote-url", "http://127.0.0.1:9/mcp"],
        ["wrap", "--server", "python 'unterminated"],
        ["wrap", "--server", "x", "--port", "70000"],
        ["wrap", "--remote-url", "ftp://nope"],
        ["wrap", "--server", "x", "--trusted-proxies", "10.0.0.0/33"],
        ["wrap", "--server", "x", "--country-header", "bad header"],
    ],
)
def test_bad_wrap_invocations_exit_2_with_a_message(args: list[str]) -> None:
    result = run(*args, "--state-file", ":memory:")
    assert result.returncode == 2
    assert "error" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_the_human_banner_prints_the_admin_key_and_a_curl(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [CLI, "wrap", "--server", f"{PYTHON} {ECHO_SERVER}", "--port", "0", "--state-file", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "curl" in line:
                break
        text = "".join(lines)
        admin = (tmp_path / "admin.key").read_text().strip()
        assert f"Admin key    : {admin}" in text
        assert f"-H 'X-Admin-Key: {admin}'" in text and "/keys" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if proc.stdout:
            proc.stdout.close()


def test_sigterm_drains_an_in_flight_call_before_exiting() -> None:
    gw = start_gateway("--server", ECHO_COMMAND, "--rate-limit", "0")
    raw = gw.create_key(5)
    result: dict[str, Any] = {}

    def slow_call() -> None:
        result.update(gw.call_tool("slow", {"seconds": 1.5}, raw))

    worker = threading.Thread(target=slow_call)
    worker.start()
    deadline = time.monotonic() + 10
    while gw.client.get("/health").json()["inflight"] == 0:
        assert time.monotonic() < deadline, "the slow call never reached the gateway"
    gw.proc.send_signal(signal.SIGTERM)
    worker.join(30)
    assert result.get("result", {}).get("content", [{}])[0].get("text") == "slept 1.5"
    assert gw.stop() == 0


def test_a_json_state_file_from_the_node_gateway_is_refused_clearly(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"keys": {"pg_abc": {"credits": 5}}}')
    result = run("wrap", "--server", ECHO_COMMAND, "--state-file", str(state), "--port", "0")
    assert result.returncode != 0
    assert "is not a PayGate state database" in result.stderr and "--import-key" in result.stderr
    assert "paygate-mcp import-state" in result.stderr
    assert "Traceback" not in result.stderr
    assert state.read_text() == '{"keys": {"pg_abc": {"credits": 5}}}'  # left untouched


def test_validate_reports_an_alert_rule_outside_its_limits(tmp_path: Path) -> None:
    cfg = {"serverCommand": "node", "alertRules": [{"type": "spending_threshold", "threshold": 150}]}
    proc = run("validate", "--config", write(tmp_path, cfg), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["valid"] is False
    assert any(d["field"] == "alertRules" and "percentage" in d["message"] for d in report["diagnostics"])


def test_validate_refuses_a_webhook_url_on_a_private_address_unless_allowed(tmp_path: Path) -> None:
    cfg = {
        "serverCommand": "node",
        "webhookUrl": "http://127.0.0.1:9/hook",
        "webhookFilters": [{"name": "f", "events": ["*"], "url": "http://10.1.2.3/x"}],
    }
    proc = run("validate", "--config", write(tmp_path, cfg), "--json")
    report = json.loads(proc.stdout)
    fields = {d["field"] for d in report["diagnostics"] if d["level"] == "error"}
    assert proc.returncode == 1 and {"webhookUrl", "webhookFilters.0.url"} <= fields
    allowed = run("validate", "--config", write(tmp_path, {**cfg, "webhookAllowPrivate": True}), "--json")
    assert allowed.returncode == 0, allowed.stdout


def test_sigterm_ends_open_mcp_streams_at_once_instead_of_holding_the_stop() -> None:
    gw = start_gateway("--server", ECHO_COMMAND)
    init = gw.rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    session = init.headers["mcp-session-id"]
    opened, ended = threading.Event(), threading.Event()

    def hold_stream() -> None:
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": session}
        with httpx.stream("GET", f"{gw.url}/mcp", headers=headers, timeout=60) as resp:
            assert resp.status_code == 200
            opened.set()
            for _ in resp.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=hold_stream, daemon=True)
    reader.start()
    assert opened.wait(10)
    gw.proc.send_signal(signal.SIGTERM)
    reader.join(10)  # uvicorn alone would keep the stream (and the process) for 30 s
    assert ended.is_set()
    assert gw.stop() == 0


def test_a_reference_config_starts_and_says_once_what_it_does_not_act_on(tmp_path: Path) -> None:
    config = tmp_path / "paygate.json"
    config.write_text(
        json.dumps(
            {
                "discoveryMode": "dynamic",
                "logLevel": "warn",
                "toolPricing": {"echo": {"creditsPerCall": 2, "timeoutMs": 5000}},
                "globalQuota": {"hourlyCallLimit": 5},
                "webhookFilters": [{"id": "f1", "name": "ops", "events": ["*"], "url": "https://hooks.example.com/x"}],
                "madeUpKey": True,
            }
        )
    )
    gw = start_gateway("--server", ECHO_COMMAND, "--config", str(config), "--stripe-secret", "whsec_x")
    try:
        tools = gw.rpc("tools/list").json()["result"]["tools"]
        assert all(t["name"].startswith("paygate_") for t in tools)  # discoveryMode: dynamic took effect
        warnings = [line for line in gw.stderr().splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1, gw.stderr()
        assert "madeUpKey" in warnings[0]
        assert "hourlyCallLimit" not in warnings[0]  # enforced now: every key's hourly spend cap (money-rules.md)
        assert "timeoutMs" not in warnings[0]  # enforced now: the tool's own timeout (docs/traffic.md)
        assert "stripe" not in warnings[0].lower()  # enforced now: it turns on POST /stripe/webhook
        assert gw.client.post("/stripe/webhook", content=b"{}").status_code == 400  # a signature is required
    finally:
        gw.stop()


def test_ctrl_c_at_the_terminal_stops_the_gateway_and_its_server_quietly(tmp_path: Path) -> None:
    """Ctrl-C sends SIGINT to the terminal's whole foreground process group: the gateway and, unless it
    runs in a session of its own, the wrapped server (which then dies mid-read with a traceback)."""
    log = tmp_path / "stderr.log"
    argv = [CLI, "wrap", "--server", ECHO_COMMAND, "--port", "0", "--json", "--state-file", ":memory:"]
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        os.killpg(proc.pid, signal.SIGINT)  # the whole group, as a terminal does
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
