"""GET /tools/available: every tool the backend offers, as one key sees it (ACL, price, affordability, windows)."""

from __future__ import annotations

import time
from typing import Any

from paygate.core.records import KeyRecord
from paygate.reports.keys import KeyReports, key_status, window

ACL_DENIAL = "denied_by_acl"  # the reference's denyReason for a tool the key's (effective) ACL refuses


def tools_available(reports: KeyReports, record: KeyRecord, tools: list[dict[str, Any]]) -> dict[str, Any]:
    now = time.time()
    policy = reports.policy(record)
    allowed, denied = policy.allowed_tools, policy.denied_tools
    rows = []
    for tool in tools:
        name = str(tool["name"])
        base = reports.billing.prices.for_tool(name)
        price = reports.tool_price(record, name)
        accessible = not (allowed and name not in allowed) and name not in denied
        row: dict[str, Any] = {
            "tool": name,
            "accessible": accessible,
            "creditsPerCall": price,
            "canAfford": record.credits >= price,
        }
        if not accessible:
            row["denyReason"] = ACL_DENIAL
        if base.credits_per_kb_input:
            row["creditsPerKbInput"] = base.credits_per_kb_input
        if base.credits_per_kb_output:
            row["creditsPerKbOutput"] = base.credits_per_kb_output
        if base.rate_limit_per_min:
            w = window(reports.store, f"{record.key_hash}\x00{name}", base.rate_limit_per_min, now)
            row["rateLimit"] = {k: w[k] for k in ("limit", "used", "remaining", "resetInMs")}
        rows.append(row)
    return {
        **reports.identity(record),
        "status": key_status(record, now),
        "creditsAvailable": record.credits,
        "totalTools": len(rows),
        "accessibleTools": sum(1 for r in rows if r["accessible"]),
        "globalRateLimit": window(reports.store, record.key_hash, reports.global_rate_limit(record), now),
        "tools": rows,
    }
