"""Payments: credits bought with Stripe (Checkout, the webhook, refunds and disputes). docs/payments.md."""
