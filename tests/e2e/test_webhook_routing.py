"""Webhook routing through the real CLI: filters to other receivers, per-key URLs, SSRF refusals at
start-up and on the API, and a 400 that changes nothing for every bad request."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from paygate.webhooks import verify_signature
from tests.e2e.test_webhooks import FAST, get, hooked, post
from tests.support import CLI, ECHO_COMMAND, Gateway, masked, running_gateway, wait_until, write_config
from tests.webhook_receiver import receiving


def test_filters_route_events_by_type_to_their_own_receivers_with_their_own_secrets(tmp_path: Path) -> None:
    with receiving() as main, receiving() as alerts, receiving() as usage, hooked(tmp_path, main) as gw:
        made = post(
            gw,
            "/webhooks/filters",
            {
                "name": "lifecycle",
                "events": ["key.created", "key.revoked"],
                "url": alerts.url("/alerts"),
                "secret": "whsec_alerts",
            },
        )
        assert made["id"].startswith("wf_") and made["hasSecret"] is True and made["secret"] == "***"
        assert made["url"] == f"http://127.0.0.1:{alerts.port}/***" and made["source"] == "api"
        calls_filter = post(gw, "/webhooks/filters", {"name": "calls", "events": ["usage"], "url": usage.url()})
        off = post(gw, "/webhooks/filters", {"name": "off", "events": ["*"], "url": usage.url("/off"), "active": False})
        key = gw.create_key(10)
        assert "result" in gw.call_tool("echo", {"text": "x"}, key)
        assert gw.client.post("/keys/revoke", headers=gw.admin(), json={"key": key}).status_code == 200
        wait_until(lambda: len(alerts.delivered_admin()) >= 2, what="lifecycle events at the filter's receiver")
        wait_until(lambda: len(usage.delivered_events()) >= 1, what="the call at the usage receiver")
        wait_until(
            lambda: main.delivered_admin(type_="key.revoked") != [] and main.delivered_events() != [],
            what="everything at the default URL too",
        )
        assert [e["type"] for e in alerts.delivered_admin()] == ["key.created", "key.revoked"]
        assert alerts.delivered_events() == [] and alerts.ok()[0].path == "/alerts"
        for r in alerts.ok():
            assert verify_signature(r.body, r.headers["x-paygate-signature"], "whsec_alerts")
        assert "x-paygate-signature" not in main.ok()[0].headers
        assert usage.delivered_admin() == [] and usage.ok("/off") == []
        assert usage.delivered_events()[0]["apiKey"] == masked(key)
        listed = get(gw, "/webhooks/filters")
        assert listed["count"] == 3 and all("whsec" not in str(f) for f in listed["filters"])

        def destinations() -> dict[str, Any]:
            return {d["destination"]: d for d in get(gw, "/webhooks/stats")["destinations"]}

        wait_until(lambda: destinations()[made["id"]]["delivered"] >= 1, what="the filter's delivery counted")
        dests = destinations()
        assert dests[made["id"]]["name"] == "lifecycle"
        assert dests[calls_filter["id"]]["type"] == "filter" and "default" in dests
        # update and delete
        changed = post(gw, "/webhooks/filters/update", {"id": off["id"], "active": True, "events": ["key.topup"]})
        assert changed["active"] is True and changed["events"] == ["key.topup"]
        assert post(gw, "/webhooks/filters/update", {"id": made["id"], "secret": None})["hasSecret"] is False
        assert post(gw, "/webhooks/filters/delete", {"id": calls_filter["id"]}) == {
            "deleted": True,
            "id": calls_filter["id"],
        }
        assert {f["name"] for f in get(gw, "/webhooks/filters")["filters"]} == {"lifecycle", "off"}
        for type_ in ("webhook.filter_created", "webhook.filter_updated", "webhook.filter_deleted"):
            wait_until(lambda t=type_: gw.events(t) != [], what=type_)  # type: ignore[misc]
        assert "whsec" not in gw.stderr()


def test_filters_from_the_config_file_route_and_are_read_only(tmp_path: Path) -> None:
    with receiving() as main, receiving() as other:
        config = {
            "webhookFilters": [{"name": "cfg", "events": ["key.created"], "url": other.url(), "keyPrefixes": ["pg_"]}]
        }
        with hooked(tmp_path, main, config=config) as gw:
            listed = get(gw, "/webhooks/filters")["filters"]
            assert [(f["name"], f["source"], f["keyPrefixes"]) for f in listed] == [("cfg", "config", ["pg_"])]
            gw.create_key(1)
            wait_until(lambda: other.delivered_admin(type_="key.created") != [], what="the config filter's event")
            resp = gw.client.post("/webhooks/filters/delete", headers=gw.admin(), json={"id": listed[0]["id"]})
            assert resp.status_code == 409 and "config file" in resp.json()["error"]


def test_key_prefixes_only_match_events_about_keys_with_that_prefix(tmp_path: Path) -> None:
    with receiving() as main, receiving() as other, hooked(tmp_path, main) as gw:
        key = gw.create_key(5)
        post(gw, "/webhooks/filters", {"name": "mine", "events": ["*"], "url": other.url(), "keyPrefixes": [key[:7]]})
        post(
            gw,
            "/webhooks/filters",
            {"name": "nobody", "events": ["*"], "url": other.url("/nobody"), "keyPrefixes": ["zz_"]},
        )
        assert "result" in gw.call_tool("echo", {"text": "x"}, key)
        wait_until(lambda: other.delivered_events() != [], what="the call at the prefix filter")
        assert other.ok("/nobody") == []


def test_a_per_key_url_gets_that_keys_events_only_signed_with_its_secret(tmp_path: Path) -> None:
    with receiving() as main, receiving() as own, hooked(tmp_path, main) as gw:
        key = gw.create_key(50)
        other = gw.create_key(50)
        assert gw.client.post("/keys/alias", headers=gw.admin(), json={"key": key, "alias": "acme"}).status_code == 200
        set_ = post(gw, "/keys/webhook", {"key": "acme", "url": own.url("/acme"), "secret": "whsec_acme"})
        assert set_ == {
            **set_,
            "keyMasked": masked(key),
            "configured": True,
            "hasSecret": True,
            "url": f"http://127.0.0.1:{own.port}/***",
        }
        assert "whsec" not in str(set_)
        for k in (key, other, key):
            assert "result" in gw.call_tool("echo", {"text": "x"}, k)
        assert gw.client.post("/topup", headers=gw.admin(), json={"key": key, "credits": 5}).status_code == 200
        assert gw.client.post("/topup", headers=gw.admin(), json={"key": other, "credits": 5}).status_code == 200
        wait_until(
            lambda: len(own.delivered_events()) == 2 and own.delivered_admin(type_="key.topup") != [],
            what="the key's calls and its topup at its own URL",
        )
        wait_until(lambda: len(main.delivered_events()) == 3, what="all calls at the default URL")
        assert {e["apiKey"] for e in own.delivered_events()} == {masked(key)}
        assert {e["metadata"]["keyMasked"] for e in own.delivered_admin(type_="key.topup")} == {masked(key)}
        for r in own.ok():
            assert r.path == "/acme" and verify_signature(r.body, r.headers["x-paygate-signature"], "whsec_acme")
        # the receiver records a POST before the gateway has read its answer, so the count may lag a moment
        wait_until(lambda: get(gw, "/keys/webhook", key="acme")["delivered"] >= 1, what="the delivery counted")
        assert get(gw, "/keys/webhook", key="acme")["configured"] is True
        # rotation: the webhook follows the key
        rotated = gw.client.post("/keys/rotate", headers=gw.admin(), json={"key": key}).json()["newKey"]
        assert get(gw, "/keys/webhook", key=rotated)["configured"] is True
        assert "result" in gw.call_tool("echo", {"text": "after rotation"}, rotated)
        wait_until(
            lambda: any(e["apiKey"] == masked(rotated) for e in own.delivered_events()),
            what="the rotated key's call at its URL",
        )
        removed = gw.client.request("DELETE", "/keys/webhook", headers=gw.admin(), json={"key": rotated})
        assert removed.status_code == 200 and removed.json()["removed"] is True
        assert get(gw, "/keys/webhook", key=rotated)["configured"] is False
        again = gw.client.request("DELETE", "/keys/webhook", headers=gw.admin(), json={"key": rotated})
        assert again.status_code == 404
        for type_ in ("key.webhook_set", "key.webhook_removed"):
            wait_until(lambda t=type_: gw.events(t) != [], what=type_)  # type: ignore[misc]
        assert "whsec" not in gw.stderr()


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "wrap", "--port", "0", "--state-file", ":memory:", "--server", ECHO_COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/x",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/",
        "http://2130706433/",
        "ftp://example.com/",
    ],
)
def test_an_unsafe_webhook_url_stops_start_up_with_a_clear_error(url: str) -> None:
    done = run_cli("--webhook-url", url)
    assert done.returncode != 0
    assert "error:" in done.stderr and "webhookUrl" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unsafe_filter_url_in_the_config_stops_start_up(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"webhookFilters": [{"name": "x", "events": ["*"], "url": "http://192.168.1.5/"}]})
    done = run_cli("--config", cfg)
    assert done.returncode != 0 and "webhookFilters[0]" in done.stderr and "private" in done.stderr, done.stderr


def test_filter_and_per_key_urls_on_private_addresses_are_400_without_the_allow_option() -> None:
    with running_gateway("--server", ECHO_COMMAND) as gw:
        key = gw.create_key(1)
        for url in ("http://127.0.0.1:8080/", "http://localhost:1/", "http://[fd00::1]/", "http://0.0.0.0/"):
            resp = gw.client.post(
                "/webhooks/filters", headers=gw.admin(), json={"name": "n", "events": ["*"], "url": url}
            )
            assert resp.status_code == 400 and "webhookAllowPrivate" in resp.json()["error"], resp.text
            resp = gw.client.post("/keys/webhook", headers=gw.admin(), json={"key": key, "url": url})
            assert resp.status_code == 400, resp.text
        assert get(gw, "/webhooks/filters")["count"] == 0
        assert get(gw, "/keys/webhook", key=key)["configured"] is False


BAD: list[tuple[str, str, Any]] = [
    ("POST", "/webhooks/filters", {"name": "", "events": ["*"], "url": "https://example.com/"}),
    ("POST", "/webhooks/filters", {"name": "n", "events": [], "url": "https://example.com/"}),
    ("POST", "/webhooks/filters", {"name": "n", "events": ["bad type"], "url": "https://example.com/"}),
    ("POST", "/webhooks/filters", {"name": "n", "events": ["*"], "url": "ftp://example.com/"}),
    ("POST", "/webhooks/filters", {"name": "n", "events": ["*"], "url": "https://example.com/" + "a" * 2100}),
    (
        "POST",
        "/webhooks/filters",
        {"name": "n", "events": ["*"], "url": "https://example.com/", "keyPrefixes": ["pg_abcdef"]},
    ),
    ("POST", "/webhooks/filters", {"name": "n", "events": ["*"], "url": "https://example.com/", "extra": 1}),
    ("POST", "/webhooks/filters", {"name": "n", "events": ["*"], "url": "https://example.com/", "active": "yes"}),
    ("POST", "/webhooks/filters/update", {"id": "wf_x"}),
    ("POST", "/webhooks/filters/update", {"id": "wf_x", "name": None}),
    ("POST", "/webhooks/filters/update", {}),
    ("POST", "/webhooks/filters/delete", {}),
    ("POST", "/webhooks/replay", {"indices": []}),
    ("POST", "/webhooks/replay", {"indices": [-1]}),
    ("POST", "/webhooks/replay", {"indices": ["0"]}),
    ("POST", "/webhooks/replay", {"indices": [0]}),  # out of range: the queue is empty
    ("POST", "/webhooks/test", {"message": ""}),
    ("POST", "/webhooks/test", {"msg": "x"}),
    ("GET", "/webhooks/log?limit=0", None),
    ("GET", "/webhooks/log?limit=201", None),
    ("GET", "/webhooks/log?since=yesterday", None),
    ("GET", "/webhooks/log?success=maybe", None),
    ("POST", "/keys/webhook", {"key": "KEY", "url": "not a url"}),
    ("POST", "/keys/webhook", {"key": "KEY"}),
    ("POST", "/keys/webhook", {"key": "KEY", "url": "https://example.com/", "secret": ""}),
    ("GET", "/keys/webhook", None),
    ("DELETE", "/keys/webhook", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD)
def test_bad_requests_are_400_and_change_nothing(gw_with_hook: Gateway, method: str, path: str, body: Any) -> None:
    gw = gw_with_hook
    key = gw.ready["testKey"]
    if isinstance(body, dict) and body.get("key") == "KEY":
        body = {**body, "key": key}
    before = (get(gw, "/webhooks/filters"), get(gw, "/webhooks/dead-letter"), get(gw, "/keys/webhook", key=key))
    resp = gw.client.request(method, path, headers=gw.admin(), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("Invalid request"), resp.text
    assert (get(gw, "/webhooks/filters"), get(gw, "/webhooks/dead-letter"), get(gw, "/keys/webhook", key=key)) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/webhooks/filters/update", {"id": "wf_nope", "active": False}, 404),
        ("POST", "/webhooks/filters/delete", {"id": "wf_nope"}, 404),
        ("POST", "/keys/webhook", {"key": "pg_unknown", "url": "https://example.com/"}, 404),
        ("GET", "/keys/webhook?key=pg_unknown", None, 404),
    ],
)
def test_unknown_filters_and_keys_are_404(
    gw_with_hook: Gateway, method: str, path: str, body: Any, status: int
) -> None:
    resp = gw_with_hook.client.request(method, path, headers=gw_with_hook.admin(), json=body)
    assert resp.status_code == status, resp.text


@pytest.fixture(scope="module")
def gw_with_hook(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with receiving() as rcv:
        cfg = write_config(tmp_path_factory.mktemp("cfg"), FAST)
        with running_gateway(
            "--server", ECHO_COMMAND, "--webhook-url", rcv.url(), "--config", cfg, "--webhook-allow-private"
        ) as gw:
            gw.ready["testKey"] = gw.create_key(1)
            yield gw
