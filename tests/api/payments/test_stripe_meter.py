"""Metered billing (`stripe.meter`): the credits a key with a Stripe customer tag was charged in each closed
window become one meter event, sent through the stripe package (to the stand-in on 127.0.0.1) off the hot
path, with an identifier fixed by key and window; failures are retried, then dead-lettered, then requeued
by an admin under the same identifier."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.stripe_support import StripeStandIn, stripe_config
from tests.support import ECHO_COMMAND, wait_until

METER = {"eventName": "paygate_credits", "intervalSeconds": 10, "maxAttempts": 2}


@pytest.fixture
def metered(standin: StripeStandIn, tmp_path: Path) -> Iterator[InProcessGateway]:
    config = stripe_config(standin.url, meter=METER)
    path = tmp_path / "paygate.json"
    path.write_text(json.dumps({**config, "defaultCreditsPerCall": 3}))
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", str(path)) as gw:
        yield gw


def meter_requests(standin: StripeStandIn) -> list[dict[str, str]]:
    return [r["form"] for r in standin.requests if r["path"] == "/v1/billing/meter_events"]


def customer_key(gw: InProcessGateway, customer: str | None) -> str:
    raw = gw.create_key(100)
    if customer:
        resp = gw.client.post(
            "/keys/tags", json={"key": raw, "tags": {"stripeCustomerId": customer}}, headers=gw.admin()
        )
        assert resp.status_code == 200, resp.text
    return raw


def test_a_windows_charges_are_one_meter_event_per_customer_key(
    metered: InProcessGateway, standin: StripeStandIn
) -> None:
    gw, t0 = metered, time.time()
    gw.tick(t0)  # starts the count: nothing before it is reported
    before = len(meter_requests(standin))
    billed, unbilled = customer_key(gw, "cus_metered_1"), customer_key(gw, None)
    for raw in (billed, billed, unbilled):
        assert "result" in gw.call_tool("echo", {"text": "x"}, raw)
    gw.tick(t0 + 30)  # the window is closed (and past the lag): collected, then sent in the background
    wait_until(lambda: len(meter_requests(standin)) == before + 1, what="the meter event")
    sent = meter_requests(standin)[-1]
    assert sent["event_name"] == "paygate_credits" and sent["payload[stripe_customer_id]"] == "cus_metered_1"
    assert sent["payload[value]"] == "6" and sent["identifier"].startswith("pg_")
    assert standin.requests[-1]["headers"].get("Idempotency-Key")  # the package's own, for its retries
    wait_until(lambda: gw.client.get("/stripe/meter", headers=gw.admin()).json()["pending"] == 0, what="sent")
    gw.tick(t0 + 31)  # the same window is never reported twice
    assert len(meter_requests(standin)) == before + 1


def test_failures_are_retried_then_dead_lettered_then_requeued_with_the_same_identifier(
    metered: InProcessGateway, standin: StripeStandIn
) -> None:
    gw, t0 = metered, time.time()
    gw.tick(t0)
    raw = customer_key(gw, "cus_metered_2")
    gw.call_tool("echo", {"text": "x"}, raw)
    standin.fail_with = (400, {"error": {"type": "invalid_request_error", "message": "No such customer"}})
    try:
        gw.tick(t0 + 30)
        status = lambda: gw.client.get("/stripe/meter", headers=gw.admin()).json()  # noqa: E731
        first_failed = lambda: [q["attempts"] for q in status()["queued"] if q["customer"] == "cus_metered_2"] == [1]  # noqa: E731
        wait_until(first_failed, what="the first attempt failed")
        gw.tick(t0 + 30 + 6)  # the retry is due 5 s later: the second and last attempt
        wait_until(lambda: len(status()["deadLetters"]) == 1, what="dead-lettered")
    finally:
        standin.fail_with = None
    dead = status()["deadLetters"][0]
    assert dead["attempts"] == 2 and "No such customer" in dead["lastError"] and "keyHash" not in dead
    failed_ids = {
        r["identifier"] for r in meter_requests(standin) if r["payload[stripe_customer_id]"] == "cus_metered_2"
    }
    assert len(failed_ids) == 1
    gw.call_in_loop(gw.rt.events.flush)  # type: ignore[union-attr]
    assert [e["data"]["identifier"] for e in gw.events("stripe.meter_dead_lettered")] == list(failed_ids)
    assert gw.client.post("/stripe/meter/requeue", headers=gw.admin()).json() == {"requeued": 1}
    gw.tick(time.time() + 1)
    wait_until(lambda: status()["pending"] == 0 and not status()["deadLetters"], what="sent after requeue")
    assert meter_requests(standin)[-1]["identifier"] in failed_ids


def test_metering_is_404_unless_configured(gw: InProcessGateway) -> None:
    assert gw.client.get("/stripe/meter", headers=gw.admin()).status_code == 404
    assert gw.client.post("/stripe/meter/requeue", headers=gw.admin()).status_code == 404
