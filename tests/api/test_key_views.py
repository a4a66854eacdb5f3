"""Fleet views against a real gateway: GET /keys (flat, paginated, filtered, sorted), /keys/stats, /keys/compare."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcessGateway
from tests.support import wait_until


def get(gw: InProcessGateway, path: str, **params: Any) -> httpx.Response:
    return gw.client.get(path, params=params, headers=gw.admin())


def fresh_namespace() -> str:
    return f"ns-{uuid.uuid4().hex[:10]}"


def make_keys(gw: InProcessGateway, namespace: str, specs: list[tuple[str, int]]) -> list[str]:
    return [gw.create_key(credits, name=name, namespace=namespace) for name, credits in specs]


def names(page: dict[str, Any]) -> list[str]:
    return [k["name"] for k in page["keys"]]


def no_secrets(text: str, *raw_keys: str) -> None:
    for raw in raw_keys:
        assert raw not in text
        assert raw[-20:] not in text


# --- GET /keys ----------------------------------------------------------------------------------


def test_without_parameters_the_list_is_a_flat_array_of_masked_keys(gw: InProcessGateway) -> None:
    raw = gw.create_key(5, name="flat-one")
    resp = get(gw, "/keys")
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, list)
    assert any(k["name"] == "flat-one" and k["keyMasked"].endswith(raw[-4:]) for k in body)
    no_secrets(resp.text, raw)


def test_any_parameter_switches_to_a_page_envelope_with_total_and_has_more(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    make_keys(gw, ns, [(f"k{i}", i) for i in range(5)])
    first = get(gw, "/keys", namespace=ns, limit=2, sortBy="credits", order="asc").json()
    assert first == {**first, "total": 5, "offset": 0, "limit": 2, "hasMore": True}
    assert names(first) == ["k0", "k1"]
    last = get(gw, "/keys", namespace=ns, limit=2, offset=4, sortBy="credits", order="asc").json()
    assert names(last) == ["k4"] and last["hasMore"] is False
    beyond = get(gw, "/keys", namespace=ns, offset=10).json()
    assert beyond["keys"] == [] and beyond["total"] == 5 and beyond["hasMore"] is False


def test_default_order_is_newest_first(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    make_keys(gw, ns, [("older", 1), ("newer", 1)])
    assert names(get(gw, "/keys", namespace=ns).json()) == ["newer", "older"]


@pytest.mark.parametrize(
    ("sort_by", "order", "expected"),
    [
        ("credits", "desc", ["b", "c", "a"]),
        ("credits", "asc", ["a", "c", "b"]),
        ("name", "asc", ["a", "b", "c"]),
        ("name", "desc", ["c", "b", "a"]),
        ("createdAt", "asc", ["b", "a", "c"]),
    ],
)
def test_keys_sort_by_the_named_field_in_either_order(
    gw: InProcessGateway, sort_by: str, order: str, expected: list[str]
) -> None:
    ns = fresh_namespace()
    make_keys(gw, ns, [("b", 30), ("a", 10), ("c", 20)])
    assert names(get(gw, "/keys", namespace=ns, sortBy=sort_by, order=order).json()) == expected


def test_sorting_by_spend_and_calls_follows_real_usage(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    busy, _ = make_keys(gw, ns, [("busy", 10), ("idle", 10)])
    for _ in range(2):
        assert "result" in gw.call_tool("echo", {"text": "x"}, busy)
    for field in ("totalSpent", "totalCalls", "lastUsedAt"):
        assert names(get(gw, "/keys", namespace=ns, sortBy=field).json()) == ["busy", "idle"], field


def test_credit_range_and_name_prefix_filter_inclusively_and_case_insensitively(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    make_keys(gw, ns, [("Prod-a", 100), ("prod-b", 500), ("prod-c", 1000), ("dev-a", 500)])
    page = get(
        gw, "/keys", namespace=ns, minCredits=100, maxCredits=500, namePrefix="PROD-", sortBy="name", order="asc"
    ).json()
    assert names(page) == ["Prod-a", "prod-b"] and page["total"] == 2


def test_status_filters_tell_active_suspended_revoked_and_expired_apart(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    _, suspended, revoked = make_keys(gw, ns, [("active", 1), ("suspended", 1), ("revoked", 1)])
    gw.create_key(1, name="expired", namespace=ns, expiresIn=1)
    assert gw.client.post("/keys/suspend", json={"key": suspended}, headers=gw.admin()).status_code == 200
    assert gw.client.post("/keys/revoke", json={"key": revoked}, headers=gw.admin()).status_code == 200
    wait_until(
        lambda: names(get(gw, "/keys", namespace=ns, status="expired").json()) == ["expired"], what="the key to expire"
    )
    for status in ("active", "suspended", "revoked"):
        assert names(get(gw, "/keys", namespace=ns, status=status).json()) == [status]
    assert names(get(gw, "/keys", namespace=ns, active="false").json()) == ["revoked"]
    assert names(get(gw, "/keys", namespace=ns, suspended="true").json()) == ["suspended"]
    assert sorted(names(get(gw, "/keys", namespace=ns, expired="false").json())) == ["active", "revoked", "suspended"]


def test_group_filter_keeps_only_the_groups_keys(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    member, _ = make_keys(gw, ns, [("member", 1), ("loner", 1)])
    created = gw.client.post("/groups", json={"name": f"g-{ns}"}, headers=gw.admin())
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    assigned = gw.client.post("/groups/assign", json={"key": member, "groupId": group_id}, headers=gw.admin())
    assert assigned.status_code == 200, assigned.text
    assert names(get(gw, "/keys", namespace=ns, group=group_id).json()) == ["member"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"offset": -1},
        {"sortBy": "secret"},
        {"order": "up"},
        {"status": "gone"},
        {"active": "yes"},
        {"minCredits": -1},
        {"minCredits": 10, "maxCredits": 5},
        {"maxCredits": "1.5"},
        {"namePrefix": ""},
        {"bogus": "1"},
    ],
)
def test_a_bad_list_parameter_is_a_400_naming_the_problem(gw: InProcessGateway, params: dict[str, Any]) -> None:
    resp = get(gw, "/keys", **params)
    assert resp.status_code == 400, (params, resp.text)
    assert resp.json()["error"].startswith("Invalid request:")


def test_listing_needs_an_admin_key(gw: InProcessGateway) -> None:
    assert gw.client.get("/keys", params={"limit": 5}).status_code == 401


# --- GET /keys/stats ----------------------------------------------------------------------------


def test_stats_count_each_key_once_by_status_and_sum_credits(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    a, b, c = make_keys(gw, ns, [("a", 100), ("b", 50), ("c", 10)])
    gw.call_tool("echo", {"text": "x"}, a)
    gw.client.post("/keys/suspend", json={"key": b}, headers=gw.admin())
    gw.client.post("/keys/revoke", json={"key": c}, headers=gw.admin())
    stats = get(gw, "/keys/stats", namespace=ns).json()
    assert stats == {
        "total": 3,
        "active": 1,
        "suspended": 1,
        "expired": 0,
        "revoked": 1,
        "totalCreditsAllocated": 160,
        "totalCreditsSpent": 1,
        "totalCreditsRemaining": 159,
        "totalCalls": 1,
        "byNamespace": {ns: 3},
        "byGroup": {},
        "filteredByNamespace": ns,
    }


def test_a_rotated_keys_spend_and_calls_are_counted_once(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    (raw,) = make_keys(gw, ns, [("r", 100)])
    gw.call_tool("echo", {"text": "x"}, raw)
    before = get(gw, "/keys/stats", namespace=ns).json()
    assert gw.client.post("/keys/rotate", json={"key": raw}, headers=gw.admin()).status_code == 200
    after = get(gw, "/keys/stats", namespace=ns).json()
    assert (after["total"], after["active"], after["revoked"]) == (2, 1, 1)  # the retired key is still listed
    for field in ("totalCreditsAllocated", "totalCreditsSpent", "totalCreditsRemaining", "totalCalls"):
        assert after[field] == before[field], field


def test_stats_without_namespace_cover_every_namespace(gw: InProcessGateway) -> None:
    ns1, ns2 = fresh_namespace(), fresh_namespace()
    make_keys(gw, ns1, [("x", 1)])
    make_keys(gw, ns2, [("y", 1), ("z", 1)])
    stats = get(gw, "/keys/stats").json()
    assert stats["byNamespace"][ns1] == 1 and stats["byNamespace"][ns2] == 2
    assert "filteredByNamespace" not in stats
    assert stats["total"] == sum(stats["byNamespace"].values())
    assert stats["total"] == sum(stats[s] for s in ("active", "suspended", "expired", "revoked"))


@pytest.mark.parametrize("params", [{"namespace": ""}, {"namespace": "x" * 201}, {"ns": "prod"}])
def test_bad_stats_parameters_are_400(gw: InProcessGateway, params: dict[str, Any]) -> None:
    assert get(gw, "/keys/stats", **params).status_code == 400


# --- GET /keys/compare --------------------------------------------------------------------------


def test_compare_shows_keys_side_by_side_by_key_or_alias(gw: InProcessGateway) -> None:
    ns = fresh_namespace()
    a, b = make_keys(gw, ns, [("first", 100), ("second", 40)])
    alias = f"cmp-{uuid.uuid4().hex[:8]}"
    assert gw.client.post("/keys/alias", json={"key": b, "alias": alias}, headers=gw.admin()).status_code == 200
    gw.call_tool("echo", {"text": "x"}, a)
    resp = get(gw, "/keys/compare", keys=f"{a},{alias}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["compared"] == 2 and "notFound" not in body
    first, second = body["keys"]
    assert (first["name"], second["name"]) == ("first", "second")
    assert first["credits"] == {"current": 99, "totalSpent": 1}
    assert first["usage"] == {"totalCalls": 1, "totalAllowed": 1, "totalDenied": 0}
    assert first["status"] == "active" and first["metadata"]["namespace"] == ns
    assert set(first["velocity"]) == {"creditsPerHour", "creditsPerDay", "estimatedHoursRemaining"}
    assert set(first["rateLimit"]) == {"used", "limit", "remaining"}
    no_secrets(resp.text, a, b)


def test_compare_reports_unknown_keys_masked_and_is_404_when_none_is_known(gw: InProcessGateway) -> None:
    known = gw.create_key(1, name="known")
    ghost = "pg_" + "ab" * 24
    partial = get(gw, "/keys/compare", keys=f"{known},{ghost},no-such-alias")
    assert partial.status_code == 200
    assert partial.json()["compared"] == 1
    assert partial.json()["notFound"] == [f"pg_abab…{ghost[-4:]}", "no-such-alias"]
    no_secrets(partial.text, ghost)
    # anything that cannot be an alias (another format of key, an admin key) is masked too
    odd = get(gw, "/keys/compare", keys=f"{known},sk_live_0123456789abcdef,{gw.admin_key}")
    assert odd.json()["notFound"] == ["sk_live…cdef", f"{gw.admin_key[:7]}…{gw.admin_key[-4:]}"]
    no_secrets(odd.text, "sk_live_0123456789abcdef", gw.admin_key)
    none = get(gw, "/keys/compare", keys="nobody-1,nobody-2")
    assert none.status_code == 404 and none.json()["notFound"] == ["nobody-1", "nobody-2"]


def test_compare_finds_a_revoked_key_by_its_alias(gw: InProcessGateway) -> None:
    live, gone = gw.create_key(1, name="live"), gw.create_key(1, name="gone")
    alias = f"gone-{uuid.uuid4().hex[:8]}"
    gw.client.post("/keys/alias", json={"key": gone, "alias": alias}, headers=gw.admin())
    gw.client.post("/keys/revoke", json={"key": gone}, headers=gw.admin())
    body = get(gw, "/keys/compare", keys=f"{live},{alias}").json()
    assert [k["status"] for k in body["keys"]] == ["active", "revoked"] and "notFound" not in body


def test_a_key_named_twice_is_compared_once(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, name="twice")
    alias = f"tw-{uuid.uuid4().hex[:8]}"
    gw.client.post("/keys/alias", json={"key": raw, "alias": alias}, headers=gw.admin())
    other = gw.create_key(1, name="other")
    body = get(gw, "/keys/compare", keys=f"{raw},{alias},{other}").json()
    assert [k["name"] for k in body["keys"]] == ["twice", "other"]


@pytest.mark.parametrize("keys", ["solo", "a,a", ",".join(f"k{i}" for i in range(11)), "a,,b", ""])
def test_compare_needs_two_to_ten_distinct_keys(gw: InProcessGateway, keys: str) -> None:
    resp = get(gw, "/keys/compare", keys=keys)
    assert resp.status_code == 400, resp.text


def test_compare_without_keys_is_400(gw: InProcessGateway) -> None:
    assert get(gw, "/keys/compare").status_code == 400


def test_views_publish_no_events(gw: InProcessGateway) -> None:
    raw = gw.create_key(1, name="quiet")
    before = len(gw.events())
    get(gw, "/keys", limit=3)
    get(gw, "/keys/stats")
    get(gw, "/keys/compare", keys=f"{raw},nobody")
    assert len(gw.events()) == before
