"""x402 pay-per-call: a tool call pays for itself in a stablecoin, verified and settled by a facilitator
(docs/x402.md). `offers.py` turns prices into payment requirements and payments into their identity;
`service.py` claims, verifies, settles and records them."""
