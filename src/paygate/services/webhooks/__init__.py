"""Webhooks: batched, signed, retried, durable delivery of published events to HTTP receivers.

Modules: signing (X-PayGate-Signature), ssrf (which URLs and addresses may be called), payload
(events as receivers see them), routing (default URL, filters, per-key URLs), queue (the SQLite
outbox, batches and dead letters), sender (one HTTP POST), delivery (the background worker:
batching, retries, dead-lettering, the delivery log), service (what the HTTP API calls).
"""
