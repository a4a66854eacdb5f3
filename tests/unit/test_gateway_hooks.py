"""Gateway hooks' pure parts: event patterns checked against the bus's vocabulary, matching, and the
bound on what may wait for one hook (webhooks/gateway_hooks.py)."""

from __future__ import annotations

from typing import cast

import pytest

from paygate.events.types import EVENT_TYPES
from paygate.store.base import Store
from paygate.store.outbox import OutboxRow
from paygate.webhooks.checks import WebhookInvalid
from paygate.webhooks.gateway_hooks import MAX_QUEUED, GatewayHook, GatewayHooks, clean_patterns, matches


def test_patterns_are_known_types_prefixes_that_name_one_or_a_star() -> None:
    assert clean_patterns(["key.created", " key.* ", "key.created", "*"]) == ("key.created", "key.*", "*")
    for bad in (["key.create"], ["nothing.*"], ["key"], ["key*"], [], list(EVENT_TYPES)[:51]):
        with pytest.raises(WebhookInvalid):
            clean_patterns(bad)


def test_matching_by_type_prefix_and_star() -> None:
    assert matches(("key.*",), "key.revoked") and not matches(("key.*",), "keys.exported")
    assert matches(("*",), "gate.deny") and matches(("gate.deny",), "gate.deny")
    assert not matches(("gate.deny",), "gate.allow")


def test_a_full_hook_queue_drops_new_events_for_it_only_and_counts_them() -> None:
    hooks = GatewayHooks(cast(Store, None), allow_private=False)
    hooks.hooks = {"gh_a": GatewayHook("gh_a", "a", "https://example.com/", ("*",))}
    rows: list[OutboxRow] = [("gh_a", 1.0, "admin", "key.created", "{}")] * 3 + [("default", 1.0, "admin", "x", "{}")]
    kept = hooks.bound(rows, {"gh_a": MAX_QUEUED - 1})
    assert [r[0] for r in kept] == ["gh_a", "default"] and hooks.dropped == {"gh_a": 2}
    assert hooks.bound(rows, {}) == rows  # room for all
