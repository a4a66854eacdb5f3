"""Namespaces: GET /namespaces (keys, credits and spending per tenant).

Namespaces are implicit: one exists while some key carries it. The names are
compared as stored (case-sensitive), as everywhere else a namespace filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from paygate.api.common import require_admin
from paygate.core.records import KeyRecord
from paygate.keys.routes.crud import NAMESPACE_PATTERN
from paygate.runtime import Runtime

NamespaceQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=NAMESPACE_PATTERN,
                                             description="only this namespace")]


def namespace_stats(records: Iterable[KeyRecord]) -> list[dict[str, Any]]:
    """Per-namespace key counts, spendable credits (active keys), spending and calls, by name."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        row = out.setdefault(r.namespace, {"namespace": r.namespace, "keyCount": 0, "activeKeys": 0,
                                           "totalCredits": 0, "totalSpent": 0, "totalCalls": 0})
        row["keyCount"] += 1
        row["totalSpent"] += r.total_spent
        row["totalCalls"] += r.total_calls
        if r.active:
            row["activeKeys"] += 1
            row["totalCredits"] += r.credits
    return [out[name] for name in sorted(out)]


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(dependencies=[Depends(require_admin(rt))], tags=["namespaces"])

    @r.get("/namespaces")
    async def namespaces() -> dict[str, Any]:
        """Every namespace in use, with its key, credit and spending totals."""
        rows = namespace_stats(rt.store.list_keys())
        return {"namespaces": rows, "count": len(rows)}

    return r
