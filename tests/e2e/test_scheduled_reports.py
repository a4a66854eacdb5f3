"""Scheduled reports through the real CLI (docs/scheduled-reports.md): `paygate-mcp wrap --config F` with a
webhook secret in front of the echo MCP server; a schedule created over HTTP and `generate` sends the
report of the current day, signed, to a real local receiver, with the calls just made counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

from paygate.webhooks import verify_signature
from tests.support import ECHO_SERVER, PYTHON, running_gateway
from tests.webhook_receiver import receiving

SECRET = "whsec-e2e-scheduled-reports-0123456789"
PATH = "/admin/scheduled-reports"


def test_generate_sends_a_signed_report_to_a_real_receiver(tmp_path: Path) -> None:
    path = tmp_path / "paygate.json"
    with receiving() as receiver:
        config = {
            "serverCommand": PYTHON,
            "serverArgs": [ECHO_SERVER],
            "webhookUrl": receiver.url("/main"),
            "webhookSecret": SECRET,
            "webhookAllowPrivate": True,
        }
        path.write_text(json.dumps(config))
        with running_gateway("--config", str(path)) as gw:
            key = gw.create_key(100)
            for _ in range(2):
                assert "result" in gw.call_tool("echo", {"text": "x"}, key)
            body = {"name": "today", "type": "usage", "frequency": "daily", "url": receiver.url("/reports")}
            created = gw.client.post(PATH, json=body, headers=gw.admin())
            assert created.status_code == 200, created.text
            sid = created.json()["id"]
            today = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the period with the calls just made
            sent = gw.client.post(PATH, json={"action": "generate", "id": sid, "at": today}, headers=gw.admin())
            assert sent.status_code == 200 and sent.json()["delivered"] is True, sent.text
            got = receiver.ok("/reports")
            assert len(got) == 1 and verify_signature(got[0].body, got[0].headers.get("x-paygate-signature"), SECRET)
            report = got[0].json()["report"]
            assert report["type"] == "usage" and report["data"]["summary"]["totalCalls"] == 2
            assert gw.stop() == 0
