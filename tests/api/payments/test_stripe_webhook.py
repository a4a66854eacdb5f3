"""POST /stripe/webhook: signed events credit a key exactly once; bad signatures change nothing; refunds and
disputes take credits back up to the balance and record the rest as owed."""

from __future__ import annotations

import json
import time
from typing import Any

from paygate.core.keys import hash_key
from tests.api.backup_support import backup, digest, restore
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.stripe_support import (
    SECRET,
    charge_refunded,
    dispute_created,
    invoice_paid,
    session_completed,
    sign,
    signed_post,
)
from tests.support import ECHO_COMMAND


def flush(gw: InProcessGateway) -> None:
    assert gw.rt is not None
    gw.call_in_loop(gw.rt.events.flush)


def ledger(gw: InProcessGateway, raw: str) -> list[dict[str, Any]]:
    resp = gw.client.get("/balance/history", headers={"X-API-Key": raw})
    assert resp.status_code == 200, resp.text
    return list(reversed(resp.json()["entries"]))


def test_a_paid_session_credits_its_key_once_even_when_sent_again(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    evt = session_completed({"paygate_api_key": raw, "paygate_credits": "100"}, pi="pi_once")
    first = signed_post(gw.client, evt)
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "credited" and first.json()["balance"] == 105
    assert raw not in first.text  # the answer never echoes the key
    again = signed_post(gw.client, evt)  # Stripe's retry, or a replay (freshly signed: inside the tolerance)
    assert again.status_code == 200 and again.json()["action"] == "duplicate"
    assert gw.balance(raw) == 105
    other_event_same_session = dict(evt, id="evt_async_same_session", type="checkout.session.async_payment_succeeded")
    assert signed_post(gw.client, other_event_same_session).json()["action"] == "duplicate"
    assert gw.balance(raw) == 105
    entries = ledger(gw, raw)
    assert [(e["type"], e["amount"]) for e in entries] == [("initial", 5), ("stripe_credit", 100)]
    memo = entries[1]["memo"]
    assert evt["id"] in memo and evt["data"]["object"]["id"] in memo and "pi_once" in memo
    flush(gw)
    added = [e for e in gw.events("stripe.credits_added") if e["data"]["eventId"] == evt["id"]]
    assert len(added) == 1 and added[0]["data"]["creditsAdded"] == 100 and added[0]["data"]["newBalance"] == 105
    assert raw not in json.dumps(gw.events())


def test_the_key_may_be_named_by_its_hash_and_a_rotated_key_gets_the_credit(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    resp = gw.client.post("/keys/rotate", json={"key": raw}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    rotated = resp.json()["newKey"]
    evt = session_completed({"paygate_key_hash": hash_key(raw), "paygate_credits": "40"})
    assert signed_post(gw.client, evt).json()["action"] == "credited"
    assert gw.balance(rotated) == 40


def test_a_bad_or_missing_signature_is_400_and_changes_nothing(gw: InProcessGateway) -> None:
    raw = gw.create_key(1)
    evt = session_completed({"paygate_api_key": raw, "paygate_credits": "50"})
    payload = json.dumps(evt)
    cases = [
        {},
        {"Stripe-Signature": sign(payload, "whsec_someone_else")},
        {"Stripe-Signature": sign(payload, SECRET, timestamp=int(time.time()) - 301)},  # outside 5 minutes
        {"Stripe-Signature": "t=abc,v1=zz"},
        {"Stripe-Signature": sign(payload + " ", SECRET)},  # signed another body
    ]
    for headers in cases:
        resp = gw.client.post("/stripe/webhook", content=payload.encode(), headers=headers)
        assert resp.status_code == 400, (headers, resp.text)
        assert resp.json()["error"] == "Invalid Stripe signature"
    assert gw.balance(raw) == 1
    assert signed_post(gw.client, evt).json()["action"] == "credited"  # the same event, signed: applied once


def test_unpaid_unknown_and_foreign_events_are_acknowledged_and_change_nothing(gw: InProcessGateway) -> None:
    raw = gw.create_key(2)
    unpaid = session_completed({"paygate_api_key": raw, "paygate_credits": "10"}, payment_status="unpaid")
    subscription = session_completed({"paygate_api_key": raw, "paygate_credits": "10"}, mode="subscription")
    foreign = session_completed({"order": "42"})
    unknown = dict(session_completed({}), type="customer.created")
    for evt in (unpaid, subscription, foreign, unknown):
        resp = signed_post(gw.client, evt)
        assert resp.status_code == 200 and resp.json()["action"] == "ignored", resp.text
    assert gw.balance(raw) == 2


def test_bad_metadata_or_an_unknown_key_is_400_and_visible(gw: InProcessGateway) -> None:
    raw = gw.create_key(3)
    for credits in ("ten", "0", "-5", "1.5"):
        resp = signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": credits}))
        assert resp.status_code == 400, resp.text
    missing = signed_post(gw.client, session_completed({"paygate_api_key": "pg_nope_nope", "paygate_credits": "9"}))
    assert missing.status_code == 400 and missing.json()["error"] == "API key not found or revoked"
    gw.client.post("/keys/revoke", json={"key": raw}, headers=gw.admin())
    revoked = signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "9"}))
    assert revoked.status_code == 400
    flush(gw)
    reasons = [e["data"]["reason"] for e in gw.events("stripe.payment_unmatched")]
    assert "unknown key" in reasons and "revoked key" in reasons


def test_an_invoice_credits_the_subscriptions_key(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    evt = invoice_paid({"paygate_api_key": raw, "paygate_credits": "300"})
    assert signed_post(gw.client, evt).json()["action"] == "credited"
    assert signed_post(gw.client, evt).json()["action"] == "duplicate"
    assert gw.balance(raw) == 300


def test_a_refund_takes_back_its_share_and_a_spent_balance_is_owed(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "100"}, pi="pi_r1"))
    partial = charge_refunded("pi_r1", 500, 100)  # a fifth of the money: a fifth of the credits
    assert signed_post(gw.client, partial).json()["taken"] == 20
    assert signed_post(gw.client, partial).json()["action"] == "duplicate"
    assert gw.balance(raw) == 80
    for _ in range(3):  # spend 3 of what is left (the echo tool costs 1)
        assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    spent_down = gw.client.post(
        "/keys/transfer", json={"from": raw, "to": gw.create_key(0), "credits": 70}, headers=gw.admin()
    )
    assert spent_down.status_code == 200, spent_down.text
    assert gw.balance(raw) == 7
    rest = signed_post(gw.client, charge_refunded("pi_r1", 500, 500))  # the rest refunded: 80 more to take
    body = rest.json()
    assert (body["requested"], body["taken"], body["owed"], body["balance"]) == (80, 7, 73, 0)
    assert gw.balance(raw) == 0
    owed = gw.client.get("/stripe/owed", headers=gw.admin()).json()
    mine = [k for k in owed["keys"] if k["keyMasked"] == f"{raw[:7]}…{raw[-4:]}"]
    assert mine and mine[0]["owed"] == 73 and mine[0]["entries"][0]["cause"] == "refund"
    flush(gw)
    assert any(e["data"]["creditsOwed"] == 73 for e in gw.events("stripe.credits_owed"))
    kinds = [e["type"] for e in ledger(gw, raw)]
    assert kinds.count("stripe_refund") == 2


def test_a_dispute_after_a_partial_refund_takes_only_what_is_left_of_the_payment(gw: InProcessGateway) -> None:
    raw = gw.create_key(1000)
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "100"}, pi="pi_d1"))
    signed_post(gw.client, charge_refunded("pi_d1", 500, 250))  # half: 50
    body = signed_post(gw.client, dispute_created("pi_d1", 500)).json()  # the whole charge: the other 50 only
    assert body["requested"] == 50 and body["taken"] == 50
    assert gw.balance(raw) == 1000


def test_a_refund_before_its_payment_is_applied_when_the_payment_arrives(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    refund = charge_refunded("pi_early", 500, 500)
    early = signed_post(gw.client, refund)
    assert early.status_code == 200 and early.json()["action"] == "pending"
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "60"}, pi="pi_early"))
    assert gw.balance(raw) == 0
    assert signed_post(gw.client, refund).json()["action"] == "duplicate"  # Stripe's retry of it
    later = signed_post(gw.client, charge_refunded("pi_early", 500, 500)).json()  # another event, nothing new
    assert (later["action"], later["requested"], gw.balance(raw)) == ("taken_back", 0, 0)


def test_the_webhook_is_404_until_a_signing_secret_is_set() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as plain:
        resp = signed_post(plain.client, session_completed({"paygate_api_key": "x", "paygate_credits": "1"}))
        assert resp.status_code == 404
        assert plain.client.get("/stripe/packages").json() == {"packages": [], "configured": False}
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--stripe-secret", SECRET) as flagged:
        raw = flagged.create_key(0)
        resp = signed_post(flagged.client, session_completed({"paygate_api_key": raw, "paygate_credits": "7"}))
        assert resp.status_code == 200 and flagged.balance(raw) == 7


def test_credits_owed_raise_an_alert_without_any_rule(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "10"}, pi="pi_alert"))
    gw.client.post("/keys/transfer", json={"from": raw, "to": gw.create_key(0), "credits": 8}, headers=gw.admin())
    assert signed_post(gw.client, dispute_created("pi_alert", 500)).json()["owed"] == 8
    flush(gw)
    alerts = gw.client.get("/alerts", headers=gw.admin()).json()["alerts"]
    mine = [a for a in alerts if a["type"] == "credits_owed" and a["keyMasked"] == f"{raw[:7]}…{raw[-4:]}"]
    assert len(mine) == 1 and mine[0]["currentValue"] == 8 and mine[0]["metadata"]["cause"] == "dispute"


def test_the_payment_documents_survive_a_backup_and_restore(gw: InProcessGateway) -> None:
    raw = gw.create_key(0)
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "10"}, pi="pi_bk"))
    gw.client.post("/keys/transfer", json={"from": raw, "to": gw.create_key(0), "credits": 10}, headers=gw.admin())
    signed_post(gw.client, charge_refunded("pi_bk", 500, 500))
    signed_post(gw.client, charge_refunded("pi_never_paid", 500, 500))
    snapshot = backup(gw)
    kinds = snapshot["data"]["documents"]
    assert {"stripe_payment", "stripe_owed", "stripe_pending"} <= set(kinds)
    resp = restore(gw, snapshot, "overwrite")
    assert resp.status_code == 200, resp.text
    broken = json.loads(json.dumps(snapshot))
    first = next(iter(broken["data"]["documents"]["stripe_owed"]))
    broken["data"]["documents"]["stripe_owed"][first]["owed"] = -1
    broken["checksum"] = digest(broken["data"])
    refused = restore(gw, broken, "overwrite")
    assert refused.status_code == 400 and "stripe_owed" in refused.text


def test_a_stripe_credit_counts_as_allocated_in_the_keys_dashboard(gw: InProcessGateway) -> None:
    raw = gw.create_key(5)
    signed_post(gw.client, session_completed({"paygate_api_key": raw, "paygate_credits": "20"}))
    resp = gw.client.get("/keys/dashboard", params={"key": raw}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    assert resp.json()["balance"]["totalAllocated"] == 25
