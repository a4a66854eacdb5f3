"""Consumer reports (docs/analytics-consumers.md): rate limits and quotas, with real denials (a group's
rate limit, a key's quota) and recorded ones. Each test works in a namespace of its own."""

from __future__ import annotations

import csv
import io
import time
import uuid

import pytest

from paygate.store.rollups import CallFact
from tests.api.analytics.support import calls, get, key_hash, new_key, record, report
from tests.inprocess import InProcessGateway


def namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:8]}"


def test_rate_limits_count_denials_and_peek_the_window(gw: InProcessGateway) -> None:
    ns = namespace()
    group = gw.client.post("/groups", json={"name": f"g-{ns}", "rateLimitPerMin": 4}, headers=gw.admin()).json()
    limited = new_key(gw, 100, name="limited", namespace=ns)
    free = new_key(gw, 100, name="free", namespace=ns)
    assert gw.client.post(
        "/groups/assign", json={"groupId": group["id"], "key": limited}, headers=gw.admin()
    ).is_success
    calls(gw, limited, 6)  # 4 admitted, 2 rate_limited
    calls(gw, free, 1)
    record(gw, [CallFact(time.time() - 7200, key_hash(free), "other", ns, "tool_rate_limited")])
    out = report(gw, "/admin/rate-limits", namespace=ns)
    assert out["config"] == {"globalLimitPerMin": 0, "windowMs": 60000}
    assert out["summary"] == {"totalCalls": 8, "totalRateLimited": 3, "rateLimitRate": 0.375}
    first, second = out["perKey"]
    assert first == {
        "name": "limited",
        "key": first["key"],
        "calls": 6,
        "rateLimited": 2,
        "limitPerMin": 4,
        "currentWindowUsed": 4,
        "currentWindowRemaining": 0,
    }
    assert (second["name"], second["rateLimited"], second["limitPerMin"]) == ("free", 1, 0)
    assert second["currentWindowRemaining"] is None  # no limit
    assert out["perTool"] == [
        {"tool": "echo", "calls": 7, "rateLimited": 2},
        {"tool": "other", "calls": 1, "rateLimited": 1},
    ]
    assert len(out["hourlyTrends"]) == 24
    assert sum(h["rateLimited"] for h in out["hourlyTrends"]) == 3
    assert out["hourlyTrends"][-1]["calls"] == 7
    assert [(m["name"], m["throttleRate"]) for m in out["mostThrottled"]] == [("limited", 0.3333), ("free", 0.5)]
    # Peeking used no slot: the window is as it was.
    again = report(gw, "/admin/rate-limits", namespace=ns, limit=1)
    assert again["perKey"][0]["currentWindowUsed"] == 4 and len(again["perKey"]) == 1
    assert len(again["mostThrottled"]) == 1
    assert report(gw, "/admin/rate-limits", group=group["id"])["summary"]["totalCalls"] == 6


def test_quotas_show_usage_against_limits(gw: InProcessGateway) -> None:
    ns = namespace()
    capped = new_key(gw, 100, name="capped", namespace=ns, quota={"dailyCallLimit": 2, "monthlyCallLimit": 10})
    new_key(gw, 100, name="open", namespace=ns)
    calls(gw, capped, 3)  # 2 admitted, 1 quota_exceeded
    out = report(gw, "/admin/quotas", namespace=ns)
    assert out["config"] == {"globalQuota": None}
    assert out["summary"] == {
        "totalKeys": 2,
        "keysWithQuotas": 1,
        "totalCalls": 3,
        "totalQuotaDenials": 1,
        "quotaDenialRate": 0.3333,
    }
    first, second = out["perKey"]
    assert first == {
        "name": "capped",
        "key": first["key"],
        "dailyCalls": 2,
        "monthlyCalls": 2,
        "dailyCredits": 2,
        "monthlyCredits": 2,
        "dailyCallLimit": 2,
        "monthlyCallLimit": 10,
        "dailyCreditLimit": 0,
        "monthlyCreditLimit": 0,
        "dailyCallUtilization": 1.0,
        "monthlyCallUtilization": 0.2,
        "dailyCreditUtilization": 0.0,
        "monthlyCreditUtilization": 0.0,
        "source": "per-key",
        "quotaDenied": 1,
    }
    assert (second["name"], second["source"], second["dailyCallLimit"]) == ("open", "none", 0)
    assert out["perTool"] == [{"tool": "echo", "calls": 3, "quotaDenied": 1}]
    assert sum(h["quotaDenied"] for h in out["hourlyTrends"]) == 1
    assert out["mostConstrained"] == [
        {
            "name": "capped",
            "key": first["key"],
            "dailyCalls": 2,
            "dailyCallLimit": 2,
            "dailyCallUtilization": 1.0,
            "monthlyCalls": 2,
            "monthlyCallLimit": 10,
            "monthlyCallUtilization": 0.2,
        }
    ]
    assert [r["name"] for r in report(gw, "/admin/quotas", namespace=ns, limit=1)["perKey"]] == ["capped"]


def test_empty_answers(gw: InProcessGateway) -> None:
    ns = namespace()
    rates = report(gw, "/admin/rate-limits", namespace=ns)
    assert rates["summary"] == {"totalCalls": 0, "totalRateLimited": 0, "rateLimitRate": 0.0}
    assert rates["perKey"] == rates["perTool"] == rates["mostThrottled"] == []
    quotas = report(gw, "/admin/quotas", namespace=ns)
    assert quotas["summary"]["quotaDenialRate"] == 0.0 and quotas["perKey"] == quotas["mostConstrained"] == []


@pytest.mark.parametrize("path", ["/admin/rate-limits", "/admin/quotas"])
def test_bad_parameters_are_400(gw: InProcessGateway, path: str) -> None:
    before = report(gw, path)
    for params in ({"limit": "0"}, {"namespace": ""}, {"bogus": "1"}, {"since": "2026-02-02", "until": "2026-02-01"}):
        resp = get(gw, path, **params)
        assert resp.status_code == 400, (path, params, resp.text)
    after = report(gw, path)
    assert {k: v for k, v in before.items() if k != "generatedAt"} == {
        k: v for k, v in after.items() if k != "generatedAt"
    }


@pytest.mark.parametrize("path", ["/admin/rate-limits", "/admin/quotas"])
def test_csv_export(gw: InProcessGateway, path: str) -> None:
    ns = namespace()
    key = new_key(gw, 10, name="csv-key", namespace=ns)
    calls(gw, key, 1)
    resp = get(gw, path, namespace=ns, format="csv")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert [r["name"] for r in csv.DictReader(io.StringIO(resp.text))] == ["csv-key"]
    assert key not in resp.text
