"""GET /stripe/packages, GET /stripe/checkout, POST /stripe/checkout: packages from the config file, a
Checkout Session created through the stripe package (against the stand-in on 127.0.0.1) for the caller's
own key, named by its hash in the metadata."""

from __future__ import annotations

from pathlib import Path

from paygate.core.keys import hash_key
from tests.api.payments.conftest import config_file
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.stripe_support import StripeStandIn, session_completed, signed_post, stripe_config
from tests.support import ECHO_COMMAND


def checkout(gw: InProcessGateway, raw: str | None, body: object) -> tuple[int, dict[str, object]]:
    headers = {"X-API-Key": raw} if raw else {}
    resp = gw.client.post("/stripe/checkout", json=body, headers=headers)
    return resp.status_code, resp.json()


def test_the_packages_are_public_in_the_references_shape(gw: InProcessGateway) -> None:
    listed = gw.client.get("/stripe/packages").json()
    assert listed["configured"] is True
    assert listed["packages"][0] == {
        "id": "starter",
        "name": "100 Credits",
        "description": None,
        "credits": 100,
        "priceInCents": 500,
        "currency": "usd",
    }
    assert [p["id"] for p in listed["packages"]] == ["starter", "pro"]
    assert gw.client.get("/stripe/checkout").json() == listed


def test_a_session_is_created_for_the_callers_key_and_its_payment_credits_it(
    gw: InProcessGateway, standin: StripeStandIn
) -> None:
    raw = gw.create_key(0)
    before = len(standin.requests)
    status, body = checkout(gw, raw, {"packageId": "pro", "metadata": {"order": "42", "paygate_credits": "999999"}})
    assert status == 200, body
    assert body["packageId"] == "pro" and body["credits"] == 500
    assert str(body["url"]).startswith("https://checkout.stripe.com/") and str(body["sessionId"]).startswith("cs_")
    sent = standin.requests[before]
    form = sent["form"]
    assert sent["path"] == "/v1/checkout/sessions"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_paygate_standin"
    assert form["mode"] == "payment" and form["customer_creation"] == "if_required"
    assert form["line_items[0][price_data][unit_amount]"] == "2000"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][product_data][description]"] == "Best"
    assert form["success_url"] == "https://shop.example.com/paid?s={CHECKOUT_SESSION_ID}"
    assert form["metadata[paygate_key_hash]"] == hash_key(raw) and form["metadata[paygate_credits]"] == "500"
    assert form["metadata[order]"] == "42"  # the buyer's own metadata, never ours overwritten
    assert form["payment_intent_data[metadata][paygate_key_hash]"] == hash_key(raw)
    assert raw not in str(sent)  # the raw key never goes to Stripe
    meta = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
    paid = session_completed(meta, session=str(body["sessionId"]), amount=2000)
    assert signed_post(gw.client, paid).json()["action"] == "credited"
    assert gw.balance(raw) == 500


def test_checkout_refuses_what_it_should_and_creates_nothing(gw: InProcessGateway, standin: StripeStandIn) -> None:
    raw = gw.create_key(0)
    before = len(standin.requests)
    assert checkout(gw, None, {"packageId": "pro"})[0] == 401
    assert checkout(gw, "pg_not_a_real_key_000", {"packageId": "pro"})[0] == 401
    status, body = checkout(gw, raw, {"packageId": "gold"})
    assert status == 404 and body["packages"] == ["pro", "starter"]
    for bad in (
        {"packageId": "pro", "successUrl": "https://evil.example.net/x"},  # another origin
        {"packageId": "pro", "cancelUrl": "javascript:alert(1)"},
        {"packageId": "pro", "successUrl": "https://user:pw@shop.example.com/x"},
        {"packageId": "pro", "metadata": {f"k{i}": "v" for i in range(11)}},
        {"packageId": "pro", "metadata": {"k": "v" * 501}},
        {"packageId": 5},
        {"packageId": "pro", "extra": 1},
    ):
        assert checkout(gw, raw, bad)[0] == 400, bad
    assert len(standin.requests) == before
    ok, body = checkout(gw, raw, {"packageId": "starter", "successUrl": "https://shop.example.com/thanks"})
    assert ok == 200 and standin.requests[-1]["form"]["success_url"] == "https://shop.example.com/thanks"


def test_a_stripe_error_is_503_and_nothing_is_announced(gw: InProcessGateway, standin: StripeStandIn) -> None:
    raw = gw.create_key(0)
    standin.fail_with = (400, {"error": {"type": "invalid_request_error", "message": "No such price"}})
    try:
        status, body = checkout(gw, raw, {"packageId": "starter"})
    finally:
        standin.fail_with = None
    assert status == 503 and "No such price" in str(body["error"])
    assert all(e["data"]["keyMasked"] != f"{raw[:7]}…{raw[-4:]}" for e in gw.events("stripe.checkout_created"))


def test_checkout_is_404_without_a_secret_key(tmp_path: Path, standin: StripeStandIn) -> None:
    config = stripe_config(standin.url)
    del config["stripe"]["secretKey"]  # type: ignore[attr-defined]
    with running_inprocess_gateway("--server", ECHO_COMMAND, "--config", config_file(tmp_path, config)) as g:
        raw = g.create_key(0)
        assert checkout(g, raw, {"packageId": "pro"})[0] == 404
        assert g.client.get("/stripe/packages").json() == {"packages": [], "configured": False}


def test_the_stripe_secrets_never_show_in_the_config_view(gw: InProcessGateway) -> None:
    text = gw.client.get("/config", headers=gw.admin()).text
    assert "sk_test_paygate_standin" not in text and "whsec_" not in text
