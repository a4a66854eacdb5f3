"""Stripe through the real CLI: configured from a config file, a signed webhook raises the key's balance
once (sent twice, and again after a restart on the same state file), a paid tool call spends it, Checkout
reaches the Stripe stand-in on 127.0.0.1; neither the key nor a secret is ever logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stripe_support import SECRET, session_completed, signed_post, stripe_config, stripe_standin
from tests.support import ECHO_COMMAND, running_gateway

pytestmark = pytest.mark.e2e

ADMIN_KEY = "admin_stripe_e2e_0123456789"


def test_a_signed_webhook_credits_once_across_a_restart_and_the_credits_pay_for_calls(tmp_path: Path) -> None:
    state = str(tmp_path / "paygate.db")
    config = tmp_path / "paygate.json"
    with stripe_standin() as standin:
        config.write_text(json.dumps({**stripe_config(standin.url), "defaultCreditsPerCall": 2}))
        args = ("--server", ECHO_COMMAND, "--config", str(config), "--state-file", state)
        with running_gateway(*args, state_file=None, admin_key=ADMIN_KEY) as gw:
            raw = gw.create_key(0)
            created = gw.client.post("/stripe/checkout", json={"packageId": "starter"}, headers={"X-API-Key": raw})
            assert created.status_code == 200, created.text
            sent = standin.requests[-1]["form"]
            meta = {k[9:-1]: v for k, v in sent.items() if k.startswith("metadata[")}
            paid = session_completed(meta, session=created.json()["sessionId"])
            assert signed_post(gw.client, paid).json()["action"] == "credited"
            assert signed_post(gw.client, paid).json()["action"] == "duplicate"
            assert gw.balance(raw) == 100
            reply = gw.call_tool("echo", {"text": "paid for"}, raw)
            assert "result" in reply, reply
            assert gw.balance(raw) == 98
            log = gw.stderr()
        with running_gateway(*args, state_file=None, admin_key=ADMIN_KEY) as again:
            assert signed_post(again.client, paid).json()["action"] == "duplicate"  # remembered on disk
            assert again.balance(raw) == 98
            log += again.stderr()
    for secret in (raw, SECRET, "sk_test_paygate_standin"):
        assert secret not in log
    assert "stripe.credits_added" in log


def test_a_redis_fleet_credits_a_payment_once_when_every_instance_gets_it_at_once(redis_url: str) -> None:
    """Stripe may deliver an event to any instance behind the load balancer, and retry on another: the
    once-record is in Redis, in the credit's own script, so the fleet credits it once."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.redis_fleet import start_fleet, stop_all

    fleet = start_fleet(3, redis_url, "--rate-limit", "0", "--redis-prefix", "stripe_e2e", "--stripe-secret", SECRET)
    try:
        raw = fleet[0].create_key(0)
        paid = session_completed({"paygate_api_key": raw, "paygate_credits": "250"}, pi="pi_fleet")
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda gw: signed_post(gw.client, paid).json()["action"], fleet * 2))
        assert sorted(answers) == ["credited"] + ["duplicate"] * 5
        assert {gw.balance(raw) for gw in fleet} == {250}
    finally:
        stop_all(fleet)


def test_migrate_store_carries_what_was_credited_once(tmp_path: Path, redis_url: str) -> None:
    """SQLite → Redis → SQLite with `paygate-mcp migrate-store`: a paid event replayed after each move is
    still a duplicate (the once-records travel with the ledger)."""
    from tests.e2e.test_store_migration import migrate

    state, back = tmp_path / "paygate.db", tmp_path / "back.db"
    args = ("--server", ECHO_COMMAND, "--stripe-secret", SECRET)
    with running_gateway(*args, "--state-file", str(state), state_file=None, admin_key=ADMIN_KEY) as gw:
        raw = gw.create_key(0)
        paid = session_completed({"paygate_api_key": raw, "paygate_credits": "30"})
        assert signed_post(gw.client, paid).json()["action"] == "credited"
    code, report = migrate("--from", str(state), "--to", redis_url, "--redis-prefix", "stripe_moved")
    assert code == 0 and report["copied"]["onceMoves"] == 1, report
    redis_args = (*args, "--redis-url", redis_url, "--redis-prefix", "stripe_moved")
    with running_gateway(*redis_args, state_file=None, admin_key=ADMIN_KEY) as on_redis:
        assert signed_post(on_redis.client, paid).json()["action"] == "duplicate"
        assert on_redis.balance(raw) == 30
    code, report = migrate("--from", redis_url, "--redis-prefix", "stripe_moved", "--to", str(back))
    assert code == 0 and report["copied"]["onceMoves"] == 1, report
    with running_gateway(*args, "--state-file", str(back), state_file=None, admin_key=ADMIN_KEY) as again:
        assert signed_post(again.client, paid).json()["action"] == "duplicate"
        assert again.balance(raw) == 30
