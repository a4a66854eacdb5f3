"""The rest of the SDK client matrix: the `mcp` Python SDK's previous major (1.x) and the TypeScript SDK.

Neither can run in this venv (1.x cannot share it with 2.x; the TypeScript SDK is Node), so each is a
small script run as a subprocess: tests/clients/mcp1_client.py by `.venv-mcp1` (made by scripts/test)
and tests/clients/ts_client.mjs by node. Each connects to the gateway over Streamable HTTP with its
key, drives sampling, elicitation, progress and cancellation against server-everything (stdio and
Streamable HTTP behind the gateway), and prints a JSON report; the test checks it and the gateway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.everything import (
    CANCEL_ARGS,
    ELICITATION,
    ELICITATION_ANSWER,
    ELICITATION_LINES,
    ELICITATION_MESSAGE,
    LONG_RUNNING,
    PROGRESS_ARGS,
    PROGRESS_RESULT,
    SAMPLING,
    SAMPLING_PREFIX,
    SAMPLING_SYSTEM_PROMPT,
    Everything,
    sampling_text,
)
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.e2e

MCP1_PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"
MCP1_CLIENT = ROOT / "tests" / "clients" / "mcp1_client.py"
TS_CLIENT = ROOT / "tests" / "clients" / "ts_client.mjs"
CREDITS = 10
PAID_CALLS = 4  # sampling, elicitation, progress and the echo after the cancellation; the cancelled call is refunded


def plan(everything: Everything, key: str, model: str) -> dict[str, Any]:
    return {
        "url": f"{everything.gw.url}/mcp",
        "key": key,
        "sampling": {
            "tool": SAMPLING,
            "arguments": {"prompt": "six times seven?", "maxTokens": 7},
            "answer": {"model": model, "text": "42"},
        },
        "elicitation": {"tool": ELICITATION, "answer": ELICITATION_ANSWER},
        "progress": {"tool": LONG_RUNNING, "arguments": PROGRESS_ARGS},
        "cancel": {"tool": LONG_RUNNING, "arguments": CANCEL_ARGS},
    }


def run_client(argv: list[str], everything: Everything, key: str, model: str) -> dict[str, Any]:
    done = subprocess.run(
        [*argv, json.dumps(plan(everything, key, model))], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, f"{argv[-1]} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return dict(json.loads(done.stdout))


def assert_drove_everything(report: dict[str, Any], everything: Everything, key: str, model: str) -> None:
    """What every client must see, and what the gateway must have done, for one report."""
    assert report["sampling"] == {
        "asked": [
            {"text": SAMPLING_PREFIX + "six times seven?", "systemPrompt": SAMPLING_SYSTEM_PROMPT, "maxTokens": 7}
        ],
        "result": [sampling_text(model, "42")],
        "isError": False,
    }
    assert report["elicitation"]["asked"] == [{"message": ELICITATION_MESSAGE, "required": ["name"]}]
    assert report["elicitation"]["result"][:2] == [
        "✅ User provided the requested information!",
        "User inputs:\n" + "\n".join(ELICITATION_LINES),
    ]
    assert report["progress"] == {"seen": [[1, 3], [2, 3], [3, 3]], "result": [PROGRESS_RESULT]}

    cancellation = report["cancellation"]
    assert "result" not in cancellation and ("error" in cancellation or cancellation.get("cancelled")), cancellation
    assert cancellation["after"] == ["Echo: after the cancellation"]  # the session outlives the cancellation
    wait_until(lambda: everything.gw.balance(key) == CREDITS - PAID_CALLS, 10, "the cancelled call's refund")
    entry = everything.logged_call()
    assert (entry["status"], entry["credits"]) == ("allowed", 0)
    assert entry["durationMs"] < 10_000  # the operation would have run for 60 s
    if everything.record is not None:
        wait_until(
            lambda: everything.upstream_cancellation_of(LONG_RUNNING, CANCEL_ARGS) is not None,
            10,
            "the server to be sent notifications/cancelled under its own id",
        )


def test_the_python_sdk_1x_client_drives_sampling_elicitation_progress_and_cancellation_through_the_gateway(
    everything: Everything,
) -> None:
    if not MCP1_PYTHON.exists():
        pytest.fail(f"{MCP1_PYTHON} is missing: ./scripts/test makes it (pip install 'mcp==1.30.0')")
    key = everything.gw.create_key(CREDITS)
    report = run_client([str(MCP1_PYTHON), str(MCP1_CLIENT)], everything, key, "mcp1-model")
    assert report["client"]["version"].startswith("1.")
    assert_drove_everything(report, everything, key, "mcp1-model")
    # 1.x sends notifications/cancelled when told to (mcp1_client.py), then stops waiting: the gateway
    # sends no answer for a cancelled request, as the spec asks
    assert report["cancellation"]["cancelled"] is True and "error" not in report["cancellation"]


def test_the_typescript_sdk_client_drives_sampling_elicitation_progress_and_cancellation_through_the_gateway(
    everything: Everything,
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the TypeScript SDK client needs Node.js (tests/node)")
    key = everything.gw.create_key(CREDITS)
    report = run_client([node, str(TS_CLIENT)], everything, key, "ts-model")
    assert report["client"]["version"] == "1.32.2"  # pinned in tests/node/package.json
    assert_drove_everything(report, everything, key, "ts-model")
    # An aborted call rejects at once with the SDK's own error; the SDK sent notifications/cancelled.
    assert report["cancellation"]["error"] == {
        "code": -32001,
        "message": "MCP error -32001: the user changed their mind",
    }
    # The gateway sends no answer for the cancelled request (an answer would be a response for an
    # unknown id to the SDK): nothing may go wrong on the client's side.
    assert report["clientErrors"] == []
