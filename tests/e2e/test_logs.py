"""Structured logs: `--log-format json` writes one JSON object per line, with the request id, and no secrets."""

from __future__ import annotations

import json

from tests.support import ECHO_COMMAND, running_gateway, wait_until


def test_json_logs_are_one_object_per_line_with_the_request_id_and_no_secrets() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--log-format", "json") as gw:
        resp = gw.client.post(
            "/keys", json={"name": "logged", "credits": 5}, headers={**gw.admin(), "X-Request-Id": "trace-log-1"}
        )
        assert resp.status_code == 201
        key = resp.json()["key"]
        assert gw.call_tool("echo", {"text": "secret body text"}, key)["result"]
        gw.client.get("/audit", headers={"X-Admin-Key": "wrong-admin-key-000000"})
        wait_until(lambda: "admin.auth_failed" in gw.stderr(), what="the failed admin login is logged")
        lines = [line for line in gw.stderr().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every line parses
        assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
        created = next(e for e in entries if '"key.created"' in e["message"])
        assert created["requestId"] == "trace-log-1" and created["level"] == "info"
        text = gw.stderr()
        assert key not in text and gw.admin_key not in text and "wrong-admin-key-000000" not in text
        assert "secret body text" not in text  # bodies are never logged


def test_the_log_level_flag_silences_info_lines() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--log-level", "warning") as gw:
        gw.create_key(5)
        assert gw.client.get("/health").status_code == 200
        assert "key.created" not in gw.stderr()


def test_an_unknown_log_format_is_refused_at_start() -> None:
    import subprocess

    from tests.support import CLI

    proc = subprocess.run(
        [CLI, "wrap", "--server", ECHO_COMMAND, "--log-format", "xml", "--state-file", ":memory:"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "logFormat" in proc.stderr
