"""The admin webhook replay queue (docs/webhooks.md#admin-replay-queue-adminwebhook-replay): a failing
receiver behind a gateway hook → retries → exhausted → replayed from /admin/webhook-replay → succeeded,
with a valid signature; purge by id and status; age-based expiry on the ticker's clock; refusals that
change nothing; roles; tracked replays across a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paygate.webhooks import verify_signature
from tests.api.hook_support import FAST, fast_gateway
from tests.inprocess import InProcessGateway, running_inprocess_gateway
from tests.support import ECHO_COMMAND, wait_until, write_config
from tests.webhook_receiver import Receiver, receiving

PATH = "/admin/webhook-replay"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with fast_gateway(tmp_path_factory.mktemp("replay")) as gateway:
        yield gateway


@pytest.fixture(scope="module", autouse=True)  # every test's deliveries go through it, whatever runs first
def hook(gw: InProcessGateway, receiver: Receiver) -> dict[str, Any]:
    body = {"name": "replayed", "url": receiver.url("/r"), "events": ["key.created"], "generateSecret": True}
    resp = gw.client.post("/admin/gateway-hooks", json=body, headers=gw.admin())
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


@pytest.fixture(autouse=True)
def _empty(gw: InProcessGateway, receiver: Receiver) -> Iterator[None]:
    yield
    receiver.fail_next(0)
    for status in ("exhausted", "succeeded"):
        assert gw.client.delete(PATH, params={"status": status}, headers=gw.admin()).status_code == 200


def view(gw: InProcessGateway, **params: Any) -> dict[str, Any]:
    resp = gw.client.get(PATH, params=params, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def exhausted_entry(gw: InProcessGateway, receiver: Receiver) -> dict[str, Any]:
    """A key.created delivery that fails its first attempt and its one retry: one exhausted entry."""
    receiver.fail_next(2, 503)
    gw.create_key(1)
    wait_until(lambda: view(gw)["summary"]["exhausted"] == 1, what="the delivery exhausted")
    return dict(view(gw, status="exhausted")["entries"][0])


def test_a_failed_hook_delivery_is_exhausted_then_replayed_and_succeeds(
    gw: InProcessGateway, receiver: Receiver, hook: dict[str, Any]
) -> None:
    entry = exhausted_entry(gw, receiver)
    assert entry["id"].startswith("dl_") and entry["destination"] == hook["id"] and entry["type"] == "hook"
    assert entry["attempts"] == 2 and entry["lastStatusCode"] == 503 and entry["lastError"] == "HTTP 503"
    assert entry["url"] == f"http://127.0.0.1:{receiver.port}/***" and entry["signed"] is True
    assert entry["headers"]["Content-Type"] == "application/json" and "X-PayGate-Signature" in entry["headers"]
    assert [e["type"] for e in entry["payload"]["adminEvents"]] == ["key.created"]
    assert hook["secret"] not in str(view(gw))
    sent = len(receiver.ok("/r"))
    resp = gw.client.post(PATH, json={"action": "replay", "id": entry["id"]}, headers=gw.admin())
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["replayed"] == 1 and result["remaining"] == 0 and result["maxRetries"] == 1
    (new_id,) = result["ids"]

    def succeeded() -> list[dict[str, Any]]:
        return list(view(gw, status="succeeded")["entries"])

    wait_until(lambda: [e["id"] for e in succeeded()] == [new_id], what="the replay succeeded")
    assert succeeded()[0]["replayOf"] == entry["id"] and view(gw)["summary"]["exhausted"] == 0
    delivered = receiver.ok("/r")[sent:]
    assert len(delivered) == 1 and delivered[0].json() == entry["payload"]
    assert verify_signature(delivered[0].body, delivered[0].headers["x-paygate-signature"], hook["secret"])
    assert gw.events("webhook.replayed")[-1]["data"]["via"] == "admin/webhook-replay"


def test_a_replay_gets_its_own_max_retries_and_is_exhausted_again(gw: InProcessGateway, receiver: Receiver) -> None:
    entry = exhausted_entry(gw, receiver)
    receiver.fail_next(100, 500)
    result = gw.client.post(PATH, json={"action": "replay", "maxRetries": 0}, headers=gw.admin()).json()
    assert result["replayed"] == 1 and result["maxRetries"] == 0
    wait_until(lambda: view(gw)["summary"]["exhausted"] == 1, what="the replay exhausted again")
    again = view(gw, status="exhausted")["entries"][0]
    assert entry["attempts"] == 2 and again["attempts"] == 1  # no retry: maxRetries 0


def test_purge_by_id_and_by_status(gw: InProcessGateway, receiver: Receiver) -> None:
    entry = exhausted_entry(gw, receiver)
    resp = gw.client.delete(PATH, params={"id": entry["id"]}, headers=gw.admin())
    assert resp.status_code == 200 and resp.json() == {"purged": 1, "remaining": 0}
    assert view(gw)["summary"]["exhausted"] == 0
    assert gw.client.get("/webhooks/dead-letter", headers=gw.admin()).json()["count"] == 0  # the same store
    exhausted_entry(gw, receiver)
    resp = gw.client.request("DELETE", PATH, json={"status": "exhausted"}, headers=gw.admin())
    assert resp.json()["purged"] == 1 and gw.events("webhook.replay_purged")[-1]["data"]["status"] == "exhausted"


def test_age_based_expiry_runs_on_the_tickers_clock(gw: InProcessGateway, receiver: Receiver) -> None:
    exhausted_entry(gw, receiver)
    gw.tick(time.time() + 29 * 86_400)  # younger than the default 30 days: kept
    assert view(gw)["summary"]["exhausted"] == 1 and view(gw)["maxAgeDays"] == 30
    gw.tick(time.time() + 31 * 86_400)
    assert view(gw)["summary"]["exhausted"] == 0
    assert gw.events("webhook.replay_expired")[-1]["data"] == {"expired": 1, "maxAgeDays": 30.0}


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        ("POST", {"json": {"action": "drop"}}, 400),
        ("POST", {"json": {"id": "dl_1"}}, 400),
        ("POST", {"json": {"action": "replay", "status": "retrying"}}, 400),
        ("POST", {"json": {"action": "replay", "maxRetries": 99}}, 400),
        ("POST", {"json": {"action": "replay", "id": "dl_999999"}}, 404),
        ("POST", {"json": {"action": "replay", "id": "nonsense"}}, 404),
        ("DELETE", {"params": {}}, 400),
        ("DELETE", {"params": {"status": "pending"}}, 400),
        ("DELETE", {"params": {"status": "later"}}, 400),
        ("DELETE", {"params": {"id": "dl_1", "status": "exhausted"}}, 400),
        ("DELETE", {"params": {"id": "dl_999999"}}, 404),
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(
    gw: InProcessGateway, receiver: Receiver, method: str, kwargs: dict[str, Any], status: int
) -> None:
    exhausted_entry(gw, receiver)
    before, events = view(gw), len(gw.events())
    resp = gw.client.request(method, PATH, headers=gw.admin(), **kwargs)
    assert resp.status_code == status, resp.text
    assert "error" in resp.json() and view(gw) == before and len(gw.events()) == events


def test_roles_a_viewer_reads_only(gw: InProcessGateway) -> None:
    resp = gw.client.post("/admin/keys", json={"name": "v", "role": "viewer"}, headers=gw.admin())
    viewer = {"X-Admin-Key": resp.json()["key"]}
    assert gw.client.get(PATH, headers=viewer).status_code == 200
    assert gw.client.post(PATH, json={"action": "replay"}, headers=viewer).status_code == 403
    assert gw.client.delete(PATH, params={"status": "exhausted"}, headers=viewer).status_code == 403


def test_a_replay_waiting_while_paused_is_pending_and_survives_a_restart(tmp_path: Path) -> None:
    state, config = str(tmp_path / "state.db"), write_config(tmp_path, {**FAST, "webhookReplayMaxRetries": 3})
    with receiving() as receiver:
        args = ("--server", ECHO_COMMAND, "--webhook-allow-private", "--config", config)
        args += ("--webhook-url", receiver.url("/d"))
        with running_inprocess_gateway(*args, state_file=state) as gw:
            entry = exhausted_entry(gw, receiver)
            assert gw.client.post("/webhooks/pause", headers=gw.admin()).status_code == 200
            (new_id,) = gw.client.post(PATH, json={"action": "replay"}, headers=gw.admin()).json()["ids"]
            pending = view(gw, status="pending")["entries"]
            assert [(e["id"], e["replayOf"], e["maxRetries"]) for e in pending] == [(new_id, entry["id"], 3)]
        with running_inprocess_gateway(*args, state_file=state) as gw:
            pending = view(gw, status="pending")["entries"]
            assert [(e["id"], e["replayOf"], e["maxRetries"]) for e in pending] == [(new_id, entry["id"], 3)]
            assert gw.client.post("/webhooks/resume", headers=gw.admin()).status_code == 200
            wait_until(lambda: view(gw)["summary"]["succeeded"] == 1, what="the replay delivered after the restart")
