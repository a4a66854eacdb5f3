"""Reading Stripe events: where the PayGate metadata is, which ids a refund can find, what is ignored."""

from __future__ import annotations

import pytest

from paygate.payments.stripe_events import StripeEventInvalid, read_payment, read_take_back
from tests.stripe_support import charge_refunded, dispute_created, event, invoice_paid, session_completed

META = {"paygate_api_key": "pg_abc", "paygate_credits": "25"}


def test_a_paid_session_with_expanded_ids() -> None:
    evt = session_completed(META, session="cs_1", pi="pi_1", amount=700)
    evt["data"]["object"]["payment_intent"] = {"id": "pi_1", "object": "payment_intent"}
    p = read_payment(evt)
    assert p is not None and (p.object_id, p.credits, p.amount, p.key.raw) == ("cs_1", 25, 700, "pg_abc")
    assert p.refs == {"session": "cs_1", "payment_intent": "pi_1"}


@pytest.mark.parametrize(
    "where",
    [
        lambda o, m: o.update(metadata=m),
        lambda o, m: o.update(metadata={}, parent=None, subscription_details={"metadata": m}),  # older API versions
        lambda o, m: o.update(metadata={}, parent=None, lines={"data": [{"metadata": m}]}),
    ],
)
def test_an_invoice_finds_its_metadata_where_stripe_puts_it(where: object) -> None:
    evt = invoice_paid({}, invoice="in_1")
    where(evt["data"]["object"], META)  # type: ignore[operator]
    p = read_payment(evt)
    assert p is not None and p.object_id == "in_1" and p.credits == 25 and p.refs["invoice"] == "in_1"


def test_what_credits_nothing() -> None:
    assert read_payment(session_completed(META, payment_status="no_payment_required")) is None
    assert read_payment(session_completed({"paygate_api_key": "pg_abc"})) is None  # no credits named
    assert read_payment(session_completed(META, mode="subscription")) is None  # its invoices credit it
    open_invoice = invoice_paid(META)
    open_invoice["data"]["object"]["status"] = "open"
    assert read_payment(open_invoice) is None
    assert read_take_back(event("charge.succeeded", {"id": "ch_1"})) is None
    with pytest.raises(StripeEventInvalid):
        read_payment(session_completed({**META, "paygate_credits": "1e3"}))


def test_take_backs_name_the_charge_and_the_payment_intent() -> None:
    refund = read_take_back(charge_refunded("pi_9", 1000, 250, charge="ch_9"))
    assert refund is not None and refund.cause == "refund" and not refund.full
    assert refund.refs == {"charge": "ch_9", "payment_intent": "pi_9"} and refund.amount == 250
    dispute = read_take_back(dispute_created("pi_9", 1000, charge="ch_9"))
    assert dispute is not None and dispute.cause == "dispute" and dispute.refs["charge"] == "ch_9"
    assert dispute.object_id.startswith("dp_") and dispute.charge_amount is None
