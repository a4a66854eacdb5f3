"""Gateway hooks (docs/gateway-hooks.md): GET/POST/DELETE /admin/gateway-hooks, signed deliveries of the
chosen events to a real receiver, validation 400s that change nothing, roles, stats, metrics, audit,
SSRF at creation and at delivery, persistence across a restart."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.webhooks import verify_signature
from paygate.webhooks.gateway_hooks import GatewayHook
from paygate.webhooks.service import WebhookService
from tests.api.hook_support import fast_gateway
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until
from tests.webhook_receiver import Receiver, receiving

PATH = "/admin/gateway-hooks"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with fast_gateway(tmp_path_factory.mktemp("hooks")) as gateway:
        yield gateway


def webhook_service(gw: InProcessGateway) -> WebhookService:
    assert gw.rt is not None
    found = [getattr(f, "__self__", None) for f in gw.rt.on_start]
    return next(s for s in found if isinstance(s, WebhookService))


def _hooks(gw: InProcessGateway) -> dict[str, Any]:
    resp = gw.client.get(PATH, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _create(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    resp = gw.client.post(PATH, json=body, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _delete(gw: InProcessGateway, hook_id: str) -> None:
    assert gw.client.delete(PATH, params={"id": hook_id}, headers=gw.admin()).status_code == 200


def test_a_hook_receives_only_its_events_signed_and_counts_them(gw: InProcessGateway, receiver: Receiver) -> None:
    made = _create(
        gw, name="lifecycle", url=receiver.url("/lifecycle"), events=["key.created", "key.*"], generateSecret=True
    )
    secret = made["secret"]
    assert made["id"].startswith("gh_") and secret.startswith("whsec_") and made["hasSecret"] is True
    assert made["url"] == f"http://127.0.0.1:{receiver.port}/***" and made["timeoutMs"] == 5000
    key = gw.create_key(10)
    assert "result" in gw.call_tool("echo", {"text": "x"}, key)  # gate.allow: not one of its events
    wait_until(lambda: receiver.delivered_admin("/lifecycle", "key.created") != [], what="key.created delivered")
    for r in receiver.ok("/lifecycle"):
        assert verify_signature(r.body, r.headers["x-paygate-signature"], secret)
        assert r.events == []  # no per-call events: the hook did not ask for gate.*
    listed = _hooks(gw)
    assert secret not in str(listed) and listed["count"] == 1
    wait_until(lambda: _hooks(gw)["hooks"][0]["delivered"] >= 1, what="the delivery counted")
    view = _hooks(gw)["hooks"][0]
    assert view["lastStatus"] == 200 and view["lastError"] is None and view["failed"] == 0
    metrics = gw.client.get("/metrics").text
    assert 'paygate_gateway_hook_deliveries_total{hook="lifecycle",result="success"}' in metrics
    created = gw.events("gateway_hook.created")
    assert created and created[-1]["data"]["url"].endswith("/***") and secret not in str(gw.events())
    _delete(gw, made["id"])
    assert gw.events("gateway_hook.deleted")[-1]["data"]["id"] == made["id"]
    assert _hooks(gw)["count"] == 0


def test_update_changes_the_fields_given_and_a_new_secret_is_shown_once(
    gw: InProcessGateway, receiver: Receiver
) -> None:
    made = _create(gw, name="calls", url=receiver.url("/calls"), events=["gate.allow"], enabled=False)
    key = gw.create_key(10)
    assert "result" in gw.call_tool("echo", {"text": "off"}, key)
    assert gw.rt is not None
    gw.call_in_loop(gw.rt.events.flush)  # the bus routes that call's event now, while the hook is off
    resp = gw.client.post(PATH, json={"id": made["id"], "enabled": True, "generateSecret": True}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    secret = resp.json()["secret"]
    assert resp.json()["enabled"] is True and gw.events("gateway_hook.updated")[-1]["data"]["changes"] == [
        "enabled",
        "secret",
    ]
    assert "result" in gw.call_tool("echo", {"text": "on"}, key)
    wait_until(lambda: receiver.delivered_events("/calls") != [], what="the call delivered")
    assert [e["tool"] for e in receiver.delivered_events("/calls")] == ["echo"]  # the disabled time sent nothing
    assert verify_signature(
        receiver.ok("/calls")[0].body, receiver.ok("/calls")[0].headers["x-paygate-signature"], secret
    )
    assert "secret" not in gw.client.get(PATH, params={"id": made["id"]}, headers=gw.admin()).json()
    _delete(gw, made["id"])


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "url": "ftp://example.com/", "events": ["key.created"]},
        {"name": "x", "url": "https://example.com/", "events": ["key.nonsense"]},
        {"name": "x", "url": "https://example.com/", "events": ["nothing.*"]},
        {"name": "x", "url": "https://example.com/", "events": []},
        {"name": "x", "url": "https://example.com/", "events": ["*"], "timeoutMs": 10},
        {"name": "x", "url": "https://example.com/", "events": ["*"], "secret": "short"},
        {"name": "x", "url": "https://example.com/", "events": ["*"], "bogus": 1},
        {"url": "https://example.com/", "events": ["*"]},
        {"id": "gh_missing", "enabled": True},
        {"id": "gh_missing"},
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(gw: InProcessGateway, body: dict[str, Any]) -> None:
    before, events = _hooks(gw), len(gw.events())
    resp = gw.client.post(PATH, json=body, headers=gw.admin())
    assert resp.status_code in (400, 404), resp.text
    assert "error" in resp.json() and _hooks(gw) == before and len(gw.events()) == events


def test_roles_a_viewer_reads_only(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get(PATH, headers=viewer).status_code == 200
    body = {"name": "v", "url": "https://example.com/", "events": ["*"]}
    assert gw.client.post(PATH, json=body, headers=viewer).status_code == 403
    assert gw.client.delete(PATH, params={"id": "gh_x"}, headers=viewer).status_code == 403
    assert gw.client.get(PATH).status_code == 401


def test_ssrf_a_loopback_url_is_refused_unless_private_addresses_are_allowed() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://169.254.169.254/latest"):
            resp = gw.client.post(PATH, json={"name": "x", "url": url, "events": ["*"]}, headers=gw.admin())
            assert resp.status_code == 400 and "webhookAllowPrivate" in resp.json()["error"], resp.text
        assert _hooks(gw)["count"] == 0


def test_ssrf_a_name_resolving_to_loopback_is_refused_at_delivery() -> None:
    with running_inprocess_gateway("--server", ECHO_COMMAND) as gw:
        asked: list[str] = []

        async def to_loopback(host: str, port: int) -> list[str]:
            asked.append(host)
            return ["127.0.0.1"]

        webhook_service(gw).sender.resolver = to_loopback
        made = _create(gw, name="rebind", url="https://hooks.example.com/in", events=["key.created"])
        gw.create_key(1)
        wait_until(lambda: _hooks(gw)["hooks"][0]["failed"] >= 1, what="the refused attempt counted")
        view = _hooks(gw)["hooks"][0]
        assert asked and asked[0] == "hooks.example.com"
        assert view["lastStatus"] == 0 and "loopback" in view["lastError"] and view["delivered"] == 0
        _delete(gw, made["id"])


def test_hooks_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    state = str(tmp_path / "state.db")
    args = ("--server", ECHO_COMMAND, "--webhook-allow-private")
    with running_inprocess_gateway(*args, state_file=state) as gw:
        made = _create(gw, name="kept", url=receiver.url("/kept"), events=["key.revoked"], secret="s" * 20)
    with running_inprocess_gateway(*args, state_file=state) as gw:
        listed = _hooks(gw)["hooks"]
        assert [(h["id"], h["name"], h["hasSecret"], h["events"]) for h in listed] == [
            (made["id"], "kept", True, ["key.revoked"])
        ]


def test_the_document_reads_back_as_the_same_hook() -> None:
    hook = GatewayHook("gh_1", "n", "https://example.com/x", ("key.*",), "s" * 20, False, 250, 1.0, 2.0)
    assert GatewayHook.of(hook.doc()) == hook


def test_a_hook_attempt_is_bounded_by_its_own_timeout(gw: InProcessGateway) -> None:
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/slow"
        made = _create(gw, name="slow", url=url, events=["key.created"], timeoutMs=200)
        started = time.monotonic()
        gw.create_key(1)
        wait_until(lambda: _hooks(gw)["hooks"][0]["failed"] >= 1, what="the attempt timed out")
        assert time.monotonic() - started < 5  # webhookTimeoutSeconds (10 s) did not apply
        assert _hooks(gw)["hooks"][0]["lastError"] == "timed out after 0.2 s"
        _delete(gw, made["id"])
    finally:
        silent.close()
