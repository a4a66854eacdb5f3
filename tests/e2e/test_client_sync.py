"""paygate.client's PayGateClient (the async client on a private loop thread) against the real CLI; the
docs' example (examples/paygate_client.py) against the README's gateway (mcp-server-time); the gateway
importable with neither the client nor the MCP SDK installed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from paygate.client import AclDenied, InsufficientCredits, PayGateClient, PayGateError
from tests.support import ROOT, TIME_SERVER, Gateway, free_port, running_gateway, usage_events

pytestmark = pytest.mark.e2e


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "paygate-client"]


def test_the_sync_client_lists_calls_and_tracks_the_balance(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(3, deniedTools=["fail"])
    with PayGateClient(echo_gateway.url, api_key=key) as client:
        assert len(client_threads()) == 1
        tools = {t.name: t for t in client.list_tools()}
        assert "fail" not in tools and tools["echo"].pricing is not None
        assert tools["echo"].pricing.credits_per_call == 1
        assert client.call_tool("add", {"a": 1, "b": 2}).structured_content == {"result": 3}
        assert client.credits_remaining == 2
        with pytest.raises(AclDenied):
            client.call_tool("fail", {})
        assert client.balance().credits == 2 and client.pricing()["add"].credits_per_call == 1
        echo_gateway.client.post("/topup", json={"key": key, "credits": 8}, headers=echo_gateway.admin())
        with ThreadPoolExecutor(4) as pool:  # threads share the one client (each call a task on its loop)
            answers = list(pool.map(lambda i: client.call_tool("add", {"a": i, "b": 1}), range(8)))
        assert [a.structured_content for a in answers] == [{"result": i + 1} for i in range(8)]
        assert client.balance().credits == 2
    assert client_threads() == []  # the private loop's thread ends with the block
    with pytest.raises(RuntimeError, match="inside `with`"):
        client.balance()


def test_a_blocking_hook_may_use_the_client_and_is_asked_once_per_call(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(0, name="sync-hook")
    seen: list[int] = []

    def pay(denied: PayGateError) -> bool:  # runs in a worker thread: blocking calls are fine
        seen.append(client.balance().credits)
        if len(seen) == 1:  # pays the first time only, but always asks for the retry
            echo_gateway.client.post("/topup", json={"key": key, "credits": 1}, headers=echo_gateway.admin())
        return True

    with PayGateClient(echo_gateway.url, api_key=key, on_payment_required=pay) as client:
        assert client.call_tool("echo", {"text": "paid"}).structured_content == {"result": "paid"}
        with pytest.raises(InsufficientCredits):
            client.call_tool("add", {"a": 1, "b": 1}, meta={"trace": "x"})
        assert seen == [0, 0]
    assert echo_gateway.balance(key) == 0
    # each logical call: one denial, the hook, one retry (paid, then refused again); never a third attempt
    assert [e["allowed"] for e in usage_events(echo_gateway, "sync-hook")] == [False, True, False, False]


def test_a_denial_leaves_the_with_block_as_itself(echo_gateway: Gateway) -> None:
    key = echo_gateway.create_key(0)
    with pytest.raises(InsufficientCredits), PayGateClient(echo_gateway.url, api_key=key) as client:
        client.call_tool("echo", {"text": "unpaid"})
    assert client_threads() == []


def test_nothing_listening_fails_the_with_and_leaves_no_thread() -> None:
    with pytest.raises(Exception) as failed, PayGateClient(f"http://127.0.0.1:{free_port()}", timeout=5):
        pass
    assert not isinstance(failed.value, PayGateError)
    assert client_threads() == []


def test_the_docs_example_runs_against_the_readme_gateway() -> None:
    """examples/paygate_client.py (docs/client.md) with a key of 1 credit: the second call tops up."""
    with running_gateway("--server", TIME_SERVER) as gw:
        key = gw.create_key(1)
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "paygate_client.py"), gw.url],
            env={**os.environ, "KEY": key, "ADMIN": gw.admin_key},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "tool: get_current_time (1 credits)" in out and "tool: convert_time (1 credits)" in out
        assert '"timezone": "UTC"' in out and '"timezone": "Europe/Paris"' in out
        assert out.count("payment required: get_current_time costs 1, 0 left") == 1
        assert "topped up: 10" in out and "credits remaining: 9" in out
        assert "refused: UnknownTool (unknown_tool)" in out
        assert "balance: 9 (spent 2 in 2 calls)" in out
        assert gw.balance(key) == 9
        broke = gw.create_key(0)  # without ADMIN the hook cannot pay: the denial is caught, once
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "paygate_client.py"), gw.url],
            env={k: v for k, v in {**os.environ, "KEY": broke}.items() if k != "ADMIN"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("payment required:") == 1 and "out of credits: Insufficient credits" in result.stdout
        assert "balance: 0 (spent 0 in 0 calls)" in result.stdout


BLOCK_THE_CLIENT = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"mcp", "mcp_types", "httpx2"} or name.startswith("paygate.client"):
            raise ImportError(f"{name} is not installed")
sys.meta_path.insert(0, Absent())
import paygate.cli, paygate.compose, paygate.app
assert not any(m.split(".")[0] in {"mcp", "mcp_types", "httpx2"} for m in sys.modules)
print("gateway imported")
"""


def test_the_gateway_imports_without_the_client_or_the_sdk() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_THE_CLIENT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gateway imported"
