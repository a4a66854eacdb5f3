"""Scoped tokens (credentials/scoped.py) on a real in-memory store: signed, expiring, revocable, narrowed;
and, through BillingService, credits conserved whichever credential a call comes with."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.billing.outcomes import Admitted, Refused
from paygate.billing.service import BillingService
from paygate.core.domain_errors import Conflict, Invalid
from paygate.core.pricing import PriceBook, ToolPrice
from paygate.credentials.resolver import Credential, Rejected
from paygate.credentials.scoped import REVOKED_DOC, ScopedTokens, fingerprint_of
from paygate.events.hub import EventHub
from paygate.events.types import EVENT_TYPES
from paygate.keys.service import KeyService
from paygate.metrics import Metrics
from paygate.store.sqlite import MEMORY, SQLiteStore

TOOLS = ("echo", "add", "dear")


def tokens_on(store: SQLiteStore, secret: str | None = None) -> ScopedTokens:
    return ScopedTokens(store, EventHub(known=EVENT_TYPES), secret)


def test_a_token_names_its_key_and_tools_and_outlives_a_restart(memory_store: SQLiteStore) -> None:
    keys = KeyService(memory_store)
    created = keys.create("parent", 10)
    token, claims = tokens_on(memory_store).issue(created.record, 300, ["echo", "add", "echo"], "job-1", "admin")
    assert token.startswith("pgt_") and created.raw not in token and claims.tools == {"echo", "add"}
    again = tokens_on(memory_store)  # a new process on the same store: the same secret, kept in the store
    found = again.resolve(token, time.time())
    assert found == Credential(created.record.key_hash, frozenset({"echo", "add"}), "scoped_token")
    expired = again.resolve(token, claims.expires_at)
    assert isinstance(expired, Rejected) and expired.reason == "token_expired"


def test_forged_and_malformed_tokens_are_invalid(memory_store: SQLiteStore) -> None:
    record = KeyService(memory_store).create("parent", 10).record
    mine = tokens_on(memory_store)
    token, _ = mine.issue(record, 300, None, None, "admin")
    payload, signature = token[4:].split(".")
    elsewhere = tokens_on(SQLiteStore(MEMORY), "another-secret-of-at-least-32-chars!!")
    other, _ = elsewhere.issue(record, 300, None, None, "admin")
    for bad in (
        f"pgt_{payload}.{signature[:-2]}AA",  # the signature changed
        f"pgt_{payload[:-2]}AA.{signature}",  # the payload changed under the signature
        other,  # signed by another gateway
        "pgt_",
        "pgt_nodot",
        "pgt_" + "A" * 20_000,
    ):
        found = mine.resolve(bad, time.time())
        assert isinstance(found, Rejected) and found.reason == "invalid_token", bad[:40]


def test_revocation_is_kept_by_fingerprint_refuses_the_token_and_is_cleaned_up_after_expiry(
    memory_store: SQLiteStore,
) -> None:
    record = KeyService(memory_store).create("parent", 10).record
    tokens = tokens_on(memory_store)
    token, claims = tokens.issue(record, 120, None, None, "admin")
    entry = tokens.revoke(token, "session ended", "admin")
    assert entry["fingerprint"] == fingerprint_of(token) == claims.fingerprint
    assert tokens.revoke(token, "again", "admin") == entry  # idempotent: the first revocation stands
    assert tokens.resolve(token, time.time()) == Rejected("token_revoked")
    assert [e["fingerprint"] for e in tokens.revoked()] == [claims.fingerprint]
    assert token not in str(memory_store.doc_list(REVOKED_DOC))
    with pytest.raises(Invalid):
        tokens.revoke(token[:-3] + "AAA", None, "admin")  # only tokens this gateway signed
    tokens.tick(claims.expires_at - 1)
    assert tokens.revoked() != []
    tokens._cleaned = 0.0
    tokens.tick(claims.expires_at)
    assert tokens.revoked() == []


def test_issuing_refuses_a_revoked_key_and_ttls_out_of_range(memory_store: SQLiteStore) -> None:
    keys = KeyService(memory_store)
    created = keys.create("parent", 10)
    tokens = tokens_on(memory_store)
    for ttl in (0, 86_401):
        with pytest.raises(Invalid):
            tokens.issue(created.record, ttl, None, None, "admin")
    keys.revoke(created.raw)
    with pytest.raises(Conflict):
        tokens.issue(created.record, 60, None, None, "admin")


def billing_on(store: SQLiteStore) -> tuple[BillingService, ScopedTokens]:
    prices = PriceBook(1, 0, {"dear": ToolPrice(3)})
    billing = BillingService(store, prices, Metrics(), shadow=False, refund_on_failure=False)
    tokens = tokens_on(store)
    billing.credentials.add(tokens)
    return billing, tokens


@settings(max_examples=40, deadline=None)
@given(
    initial=st.integers(0, 20),
    key_acl=st.lists(st.sampled_from(TOOLS), unique=True),
    token_tools=st.lists(st.lists(st.sampled_from(TOOLS), unique=True), min_size=1, max_size=3),
    calls=st.lists(st.tuples(st.integers(-1, 2), st.sampled_from(TOOLS)), max_size=25),
)
def test_credits_are_conserved_whichever_credential_calls(
    initial: int, key_acl: list[str], token_tools: list[list[str]], calls: list[tuple[int, str]]
) -> None:
    """Every call, by the key itself (-1) or one of its tokens, is admitted exactly when the key's ACL, the
    token's tools and the balance allow it; the key pays what was admitted, to the credit."""
    store = SQLiteStore(MEMORY)
    store.open()
    try:
        billing, tokens = billing_on(store)
        created = KeyService(store).create("k", initial, allowed_tools=key_acl)
        issued = [tokens.issue(created.record, 300, tools, None, "admin")[0] for tools in token_tools]
        balance, spent = initial, 0
        for who, tool in calls:
            raw = created.raw if who < 0 else issued[min(who, len(issued) - 1)]
            narrowed = None if who < 0 else set(token_tools[min(who, len(issued) - 1)]) or None
            price = 3 if tool == "dear" else 1
            allowed = (not key_acl or tool in key_acl) and (narrowed is None or tool in narrowed)
            decision = billing.admit(raw, tool, 0, None)
            if allowed and balance >= price:
                assert isinstance(decision, Admitted) and decision.charged == price
                balance, spent = balance - price, spent + price
            else:
                assert isinstance(decision, Refused)
                expected = "tool_not_allowed" if not allowed else "insufficient_credits"
                assert decision.denial.reason == expected
        record = store.get_key(created.record.key_hash)
        assert record is not None and (record.credits, record.total_spent) == (balance, spent)
        assert record.credits + record.total_spent == initial
    finally:
        store.close()
