"""Namespaces: implicit tenants (one exists while some key carries it), compared as stored
(case-sensitive), as everywhere else a namespace filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paygate.core.records import KeyRecord


def namespace_stats(records: Iterable[KeyRecord]) -> list[dict[str, Any]]:
    """Per-namespace key counts, spendable credits (active keys), spending and calls, by name."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        row = out.setdefault(
            r.namespace,
            {
                "namespace": r.namespace,
                "keyCount": 0,
                "activeKeys": 0,
                "totalCredits": 0,
                "totalSpent": 0,
                "totalCalls": 0,
            },
        )
        row["keyCount"] += 1
        row["totalSpent"] += r.total_spent
        row["totalCalls"] += r.total_calls
        if r.active:
            row["activeKeys"] += 1
            row["totalCredits"] += r.credits
    return [out[name] for name in sorted(out)]
