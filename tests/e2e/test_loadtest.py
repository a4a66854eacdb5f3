"""`paygate-mcp loadtest` against a real gateway through the real CLI: every scenario runs, the report
adds up, a key made for the run is revoked after it, and a threshold that cannot be met exits 1."""

from __future__ import annotations

import json
import subprocess

from tests.support import CLI, ECHO_COMMAND, running_gateway


def _loadtest(url: str, admin_key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [CLI, "loadtest", "--url", url, "--admin-key", admin_key, "--tool", "echo", "--arguments", '{"text": "hi"}']
    return subprocess.run([*argv, "--duration", "2", "--vus", "4", *extra], capture_output=True, text=True, timeout=120)


def test_a_run_reports_every_scenario_and_cleans_up_its_key() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        done = _loadtest(gw.url, gw.admin_key, "--json", "--min-rps", "1", "--p95-ms", "5000", "--p99-ms", "10000")
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert set(report["scenarios"]) == {"mcp_traffic", "admin_reads", "health_checks"}
        assert report["failures"] == [] and report["total"]["errors"] == 0
        assert report["total"]["requests"] == sum(s["requests"] for s in report["scenarios"].values())
        # 10 a second for 2 s, paced: never more (a busy machine may answer fewer in time)
        assert 1 <= report["scenarios"]["health_checks"]["requests"] <= 21
        keys = gw.client.get("/keys", headers=gw.admin()).json()
        made = [k for k in keys if k["name"].startswith("loadtest-")]
        assert len(made) == 1 and made[0]["active"] is False  # revoked at the end of the run
        calls = report["scenarios"]["mcp_traffic"]["requests"]
        assert made[0]["totalCalls"] >= calls * 0.8  # ~9 in 10 agent requests are paid tools/call


def test_a_threshold_not_met_fails_the_run() -> None:
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0") as gw:
        done = _loadtest(gw.url, gw.admin_key, "--min-rps", "1000000")
        assert done.returncode == 1
        verdict = done.stdout.strip().splitlines()[-1]
        assert verdict.startswith("FAIL: ") and "request rate" in verdict
